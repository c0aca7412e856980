"""Voice checkpoint -> ONNX with metadata, a torch-vs-ONNX parity check, an
evaluation on the held-out speakers, a latency figure, and the model card.

The graph takes float32 (N, 1, F, T) features (voice/audio.py computes them;
the settings travel in the metadata under ``input.features``) and returns
logits. The voice nets are small (a few ms per 3 s clip in fp32), so int8 is
optional here, not the default.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from .calibration import Tempered
from .config import config_from_dict
from .export import _max_diff, export_onnx, load_checkpoint, parity, per_class_table, quantize_int8, write_card

VOICE_DATA_TERMS = {
    "ravdess": "RAVDESS: CC BY-NC-SA 4.0 (Livingstone & Russo 2018): non-commercial, share-alike.",
    "savee": "SAVEE: free for research after registration (University of Surrey); no open licence.",
    "emodb": "EMO-DB: free download (TU Berlin, Burkhardt et al. 2005); CC0-1.0 in audEERING's packaging.",
    "cremad": "CREMA-D: Open Database License 1.0 with the Database Contents License.",
    "tess": "TESS: CC BY-NC-ND 4.0 (University of Toronto).",
}


def _windows(items, settings, limit: int, seed: int) -> np.ndarray:
    """Centred model windows of up to ``limit`` clips (a random sample)."""
    from ..voice.audio import fit_frames, silence_column
    from .voice import compute_features

    rng = np.random.default_rng(seed)
    chosen = [items[i] for i in sorted(rng.choice(len(items), size=min(limit, len(items)), replace=False))]
    cache = compute_features(chosen, settings, "export sample")
    pad = silence_column(settings)
    out = [fit_frames(cache.clip(i).astype(np.float32), settings.clip_frames, pad=pad)
           for i in range(len(chosen)) if cache.clip(i).shape[1]]
    return np.stack(out)[:, None].astype(np.float32)


def clip_latency_ms(model_path: Path, wave: np.ndarray, runs: int = 30) -> float:
    """Median ms to classify one clip on one thread: trim, normalise, features, model."""
    from ..voice.audio import prepare_clip
    from ..voice.recognizer import VoiceRecognizer

    rec = VoiceRecognizer(str(model_path), threads=1)
    times = []
    for _ in range(runs + 3):
        t0 = time.perf_counter()
        rec.classify_clip(prepare_clip(wave))
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times[3:])


def one_window_latency_ms(model_path: Path, item, settings) -> float:
    """:func:`clip_latency_ms` on exactly one model window of real speech (``item``'s audio, repeated)."""
    from ..voice.audio import read_wave

    clip = np.resize(read_wave(item.path, settings.sample_rate), int(settings.clip_seconds * settings.sample_rate))
    return round(clip_latency_ms(model_path, clip), 3)


def report_record(rep) -> dict:
    """The metrics of an evaluation report as the model cards store them."""
    return {"accuracy": rep.accuracy, "uar": rep.uar, "macro_f1": rep.macro_f1, "n": rep.n,
            "per_class": rep.per_class(), "confusion_matrix": rep.confusion.tolist(), "failed": rep.extra["failed"]}


VOICE_LIMITS = [
    "## Limits", "",
    "Acted emotions from a few dozen studio speakers (English, German), mostly two fixed sentences in "
    "RAVDESS: spontaneous speech, other languages, noisy rooms and children are recognised less reliably. "
    "Do not use the model to make decisions about people.", "",
]


def export_voice_model(checkpoint: str | Path, out: str | Path, int8: bool = False, name: str | None = None,
                       command: str = "", evaluate: bool = True, temperature: float | None = None) -> dict:
    """Export a voice checkpoint; evaluate the exported file on the recipe's
    validation speakers; write the card (metadata, ``<out>.json``, ``<out>.md``).

    ``temperature`` (default: the recipe's ``temperature``) divides the logits
    inside the exported graph: it calibrates the probabilities without
    changing any prediction."""
    from ..voice.evaluation import evaluate_voice
    from ..voice.recognizer import VoiceRecognizer
    from .voice import build_sets

    out = Path(out)
    net, state = load_checkpoint(checkpoint)
    cfg = config_from_dict(state["config"])
    if cfg.task != "voice":
        raise DataError(f"{checkpoint}: a {cfg.task} checkpoint; use `moodlens export {cfg.task}`")
    s = cfg.features
    temperature = cfg.temperature if temperature is None else float(temperature)
    if not temperature > 0:
        raise DataError(f"temperature must be positive, not {temperature}")
    if temperature != 1.0:
        net = Tempered(net, temperature).eval()
    corpora = sorted({c.corpus for c in cfg.data.train})
    card = dict(state["card"])
    card.update({
        "name": name or cfg.name,
        "architecture": {"arch": cfg.model.arch, "options": cfg.model.options},
        "training": {"config": state["config"], "epochs_run": state["epoch"], "best_val_acc_torch": state["best"],
                     "weights": "EMA" if state.get("ema") is not None else "raw",
                     "selected_on_val": Path(checkpoint).name != "last.pt"},
        "data_terms": " ".join(VOICE_DATA_TERMS.get(c, c) for c in corpora),
        "format": "int8 static QDQ (per-channel)" if int8 else "float32",
        "temperature": temperature,
        "reproduce": command,
    })
    meta = {"task": "voice", "labels": card["labels"], "input": card["input"], "card": card}

    try:
        train_items, val_items, _ = build_sets(cfg)
    except (DataError, OSError) as exc:  # exporting away from the data: parity on synthetic features
        print(f"note: training data not available ({exc}); parity checked on synthetic features, no evaluation")
        train_items = val_items = []
    if val_items:
        x = _windows(val_items, s, 64, seed=0)
    else:
        x = np.random.default_rng(0).uniform(-60, 20, (16, 1, s.n_features, s.clip_frames)).astype(np.float32)

    with tempfile.TemporaryDirectory() as tmpdir:
        fp32 = Path(tmpdir) / "fp32.onnx" if int8 else out
        export_onnx(net, torch.from_numpy(x[:2]), fp32, meta)
        card["torch_onnx_max_abs_diff"] = parity(net, fp32, x)
        if card["torch_onnx_max_abs_diff"] > 1e-3:
            raise RuntimeError(f"torch and ONNX disagree by {card['torch_onnx_max_abs_diff']:.2e}")
        if int8:
            if not train_items:
                raise DataError("int8 calibration needs the training data of the recipe")
            quantize_int8(fp32, out, _windows(train_items, s, 256, seed=1), meta)
            card["int8_vs_fp32_max_abs_diff"] = _max_diff(fp32, out, x)

    if evaluate and val_items:
        rep = evaluate_voice(VoiceRecognizer(str(out), threads=2), val_items, source="validation speakers")
        speakers = sorted({i.speaker_key for i in val_items})
        card["evaluation"] = {
            "data": f"{', '.join(sorted({c.corpus for c in cfg.data.val}) or corpora)} held-out speakers "
                    f"{', '.join(speakers)} ({rep.n} clips)",
            "split_role": "whole speakers never trained on; the same speakers selected the best epoch"
                          if card["training"]["selected_on_val"] else
                          "whole speakers never trained on; nothing was selected on them (weights of the last epoch)",
            **report_record(rep), "dropped": rep.extra["dropped"],
        }
        card["latency_ms_3s_clip_1_thread"] = one_window_latency_ms(out, val_items[0], s)

    write_card(out, meta, card, voice_card_markdown)
    return card


def voice_card_markdown(card: dict) -> str:
    """The model card for people."""
    arch, train, f = card["architecture"], card["training"], card["input"]["features"]
    lines = [
        f"# Model card: {card['name']}", "",
        f"- Task: speech emotion, {len(card['labels'])} classes: {', '.join(card['labels'])}",
        f"- Input: {f['clip_seconds']:g} s windows of {f['kind']} features ({card['input']['features'].get('n_mels')} mel "
        f"bands, {f['sample_rate']} Hz, {1000 * f['hop'] / f['sample_rate']:g} ms hop), silence-trimmed and "
        "loudness-normalised audio; longer clips average several windows",
        f"- Network: {arch['arch']} {json.dumps(arch['options'])}, {card['parameters'] / 1e6:.2f} M parameters, "
        f"{card['format']}, {card['size_bytes'] / 1e6:.2f} MB",
        f"- Trained by moodlens on {card['data']['train_count']} clips from speakers "
        f"{', '.join(card['data']['train_speakers'])}; "
        + (f"best of {train['epochs_run']} epochs chosen on " if train.get("selected_on_val", True) else
           f"weights after the last of {train['epochs_run']} epochs (fixed in advance), validated on ")
        + f"{card['data']['val_count']} clips of speakers {', '.join(card['data']['val_speakers'])}; "
        f"exported weights: {train['weights']}",
        f"- Labels not predicted, dropped from training: {card['data'].get('dropped_labels') or 'none'}",
        f"- Data terms: {card['data_terms']}",
        f"- torch vs ONNX max |logit difference|: {card['torch_onnx_max_abs_diff']:.1e}",
        f"- Softmax temperature (logits divided by it inside the graph): {card.get('temperature', 1.0):.3g}",
        "",
    ]
    ev = card.get("evaluation")
    if ev:
        lines += [
            f"## Evaluation: {ev['data']}", "",
            f"Speaker-independent accuracy **{ev['accuracy']:.4f}**, UAR **{ev['uar']:.4f}**, macro F1 "
            f"{ev['macro_f1']:.4f}. {ev['split_role']}. One 3 s clip takes "
            f"{card.get('latency_ms_3s_clip_1_thread', float('nan')):.1f} ms on one CPU thread (features + model).", "",
            *per_class_table(ev["per_class"]), "",
        ]
    lines += [
        "## Reproduce", "", "```bash", card.get("trained_with") or "moodlens train voice --config configs/voice_cnn.yaml",
        card.get("reproduce") or "moodlens export voice runs/voice_cnn/best.pt --out voice_cnn.onnx", "```", "",
        *VOICE_LIMITS,
    ]
    return "\n".join(lines)


# --- ensembles of voice models -------------------------------------------------

def voice_ensemble_card(out: str | Path, members: list[str | Path], command: str = "") -> dict:
    """Complete the card of a voice ensemble built by ``moodlens ensemble``: what the
    members learned from, and the ensemble evaluated on the first member's validation
    speakers (accuracy, UAR, per class, ECE, one-thread latency). Written like any card."""
    from ..runtime import read_metadata
    from ..voice.evaluation import score_voice
    from ..voice.recognizer import VoiceRecognizer
    from .calibration import ece
    from .voice import build_sets

    out = Path(out)
    meta = read_metadata(out)
    card = meta["card"]
    member_cards = [read_metadata(m)["card"] for m in members]
    first = member_cards[0]
    if "training" not in first:
        raise DataError(f"{members[0]}: no training record in its card; export members with `moodlens export voice`")
    cfg = config_from_dict(first["training"]["config"])
    everyone = set().union(*(c["data"]["train_speakers"] for c in member_cards))
    card.update({
        "architecture": first["architecture"], "data_terms": first["data_terms"],
        "parameters": sum(c["parameters"] for c in member_cards), "format": first["format"],
        "temperature": 1.0, "reproduce": command,
        # how the members were trained and exported, then this command: the whole recipe
        "reproduce_steps": list(dict.fromkeys(c.get("trained_with") or "" for c in member_cards if c.get("trained_with")))
        + [c["reproduce"] for c in member_cards if c.get("reproduce")] + [command],
        "data": {"train_speakers": sorted(everyone), "val_speakers": first["data"]["val_speakers"],
                 "members_leave_out": [sorted(everyone - set(c["data"]["train_speakers"])) for c in member_cards],
                 "members_train_count": [c["data"]["train_count"] for c in member_cards]},
        "members_temperature": [c.get("temperature", 1.0) for c in member_cards],
        "members_evaluation": [{"name": c["name"], "accuracy": c.get("evaluation", {}).get("accuracy"),
                                "uar": c.get("evaluation", {}).get("uar")} for c in member_cards],
    })
    try:
        _, val_items, _ = build_sets(cfg)
    except (DataError, OSError) as exc:
        print(f"note: the members' validation data is not available ({exc}); the card has no evaluation")
        val_items = []
    if val_items:
        rec = VoiceRecognizer(str(out), threads=2)
        rep, probs, true = score_voice(rec, val_items, source="validation speakers")  # scored once: report and ECE
        card["evaluation"] = {
            "data": f"held-out speakers {', '.join(sorted({i.speaker_key for i in val_items}))} ({rep.n} clips)",
            "split_role": "Whole speakers no member was trained on; nothing was selected on them",
            **report_record(rep), "ece_15_bins": ece(probs, true),
        }
        card["latency_ms_3s_clip_1_thread"] = one_window_latency_ms(out, val_items[0], cfg.features)
    write_card(out, meta, card, voice_ensemble_markdown)
    return card


def voice_ensemble_markdown(card: dict) -> str:
    arch, f, data = card["architecture"], card["input"]["features"], card["data"]
    lines = [
        f"# Model card: {card['name']}", "",
        f"- Task: speech emotion, {len(card['labels'])} classes: {', '.join(card['labels'])}",
        f"- Input: {f['clip_seconds']:g} s windows of {f['kind']} features ({f.get('n_mels')} mel bands, "
        f"{f['sample_rate']} Hz), silence-trimmed and loudness-normalised audio; longer clips average windows",
        f"- Network: {len(card['ensemble'])} x {arch['arch']} {json.dumps(arch['options'])}, their probabilities "
        f"averaged in one ONNX graph; {card['parameters'] / 1e6:.2f} M parameters in all, {card['format']}, "
        f"{card['size_bytes'] / 1e6:.2f} MB",
        f"- Trained by moodlens: each member on the speakers {', '.join(data['train_speakers'])} except its own "
        f"left-out block ({'; '.join(', '.join(b) for b in data['members_leave_out'])}), "
        f"{' / '.join(map(str, data['members_train_count']))} clips, for a fixed number of epochs",
        f"- Softmax temperature of each member (inside its graph): "
        f"{', '.join(f'{t:.3g}' for t in card.get('members_temperature', []))}; the average is not re-tempered",
        f"- Data terms: {card['data_terms']}",
        "",
    ]
    ev = card.get("evaluation")
    if ev:
        lines += [
            f"## Evaluation: {ev['data']}", "",
            f"Speaker-independent accuracy **{ev['accuracy']:.4f}**, UAR **{ev['uar']:.4f}**, macro F1 "
            f"{ev['macro_f1']:.4f}, expected calibration error (15 bins) {ev['ece_15_bins']:.3f}. {ev['split_role']}. "
            f"One 3 s clip takes {card.get('latency_ms_3s_clip_1_thread', float('nan')):.1f} ms on one CPU thread "
            "(features + all members).", "",
            *per_class_table(ev["per_class"]), "",
            "Members alone on the same speakers: " + ", ".join(
                f"{m['name']} {m['accuracy']:.4f} / UAR {m['uar']:.4f}" for m in card["members_evaluation"]
                if m["accuracy"] is not None) + ".", "",
        ]
    lines += ["## Reproduce", "", "```bash", *(card.get("reproduce_steps") or [card.get("reproduce") or ""]), "```", "",
              *VOICE_LIMITS]
    return "\n".join(lines)
