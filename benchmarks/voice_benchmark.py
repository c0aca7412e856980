"""Speaker-independent accuracy and speed of a voice model.

    python benchmarks/voice_benchmark.py                         # bundled voice-ensemble and voice-cnn
    python benchmarks/voice_benchmark.py --model runs/x.onnx default
    python benchmarks/voice_benchmark.py --leave-speakers-out --folds 4 --speakers 01-16   # trains: ~1 h

Prints Markdown tables:
1. accuracy and UAR per corpus on the speakers the model never trained on
   (the card's train_speakers are excluded; for the bundled model that is
   RAVDESS actors 17-20; SAVEE and EMO-DB were trained on whole, so they have
   no held-out row), with per-class recall;
2. optionally, speaker-independent k-fold cross-validation of a recipe over
   RAVDESS actors (default 01-16, so that 17-20 stay a test nothing is chosen
   on): a model per fold of actors, trained on the other actors plus the
   recipe's other corpora (one thread), scored at its last epoch: accuracy and
   UAR per fold, mean ± std, pooled per-class recall, and the temperature that
   calibrates the pooled held-out logits with ECE before/after
   (``python -m moodlens.train.voice_cv`` is the same without the rest);
3. latency on one thread: a 3 s clip through trim + loudness + log-mel +
   model (median ms), the parts separately, and a 60 s recording with
   segmentation (x real time).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import numpy as np  # noqa: E402

from common import SHARED, median_ms, require_shared, table  # noqa: E402
from moodlens.data.speech import drop_duplicates, load_speech_corpus  # noqa: E402
from moodlens.voice.audio import features, prepare_clip, read_wave, windows  # noqa: E402
from moodlens.voice.evaluation import evaluate_voice  # noqa: E402
from moodlens.voice.recognizer import VoiceRecognizer  # noqa: E402

CORPORA = ("ravdess", "savee", "emodb")


def corpus_items(name: str):
    items, _ = drop_duplicates(load_speech_corpus(name, require_shared(SHARED / name)))
    return items


def row(name: str, rep, note: str) -> dict:
    recall = {k: f"{v['recall']:.2f}" for k, v in rep.per_class().items() if v["support"]}
    return {"corpus": name, "clips": rep.n, "speakers": note, "accuracy": f"{rep.accuracy:.4f}",
            "UAR": f"{rep.uar:.4f}", "recall per class": " ".join(f"{k} {v}" for k, v in recall.items())}


def held_out_table(model: str) -> str:
    rec = VoiceRecognizer(model, threads=2)
    card = rec.model.meta.get("card", {})
    card_data = card.get("data", {})
    picked = card.get("training", {}).get("selected_on_val", True)  # False: the last epoch was exported
    trained, selected = set(card_data.get("train_speakers", [])), set(card_data.get("val_speakers", []))
    rows = []
    for name in CORPORA:
        items = corpus_items(name)
        test = [i for i in items if i.speaker_key not in trained]
        if not test:
            rows.append({"corpus": name, "clips": 0, "speakers": "all trained on", "accuracy": "-", "UAR": "-"})
            continue
        rep = evaluate_voice(rec, test, source=name)
        note = ", ".join(sorted({i.speaker for i in test}))
        if {i.speaker_key for i in test} <= selected:
            note += " (picked the best epoch)" if picked else " (validated on, nothing picked)"
        rows.append(row(name, rep, note))
    return table(rows, ["corpus", "clips", "speakers", "accuracy", "UAR", "recall per class"])


def leave_speakers_out_table(config: str, folds: int, epochs: int | None, speakers: list[str], out: str | None) -> str:
    """Speaker-independent k-fold cross-validation of the recipe over RAVDESS
    ``speakers`` (moodlens.train.voice_cv): one model per fold, trained on the
    other actors plus the recipe's other corpora, scored at its last epoch."""
    from moodlens.train.config import load_config
    from moodlens.train.voice_cv import cross_validate, render

    overrides = [f"optim.epochs={epochs}"] if epochs else []
    cfg = load_config(config, overrides + ["optim.threads=1"], task="voice")
    return render(cross_validate(cfg, folds, speakers, "ravdess", out_dir=out))


def latency_table(models: list[str]) -> str:
    """One row per step, one column per model, all measured in this run."""
    ravdess = SHARED / "ravdess"
    if ravdess.exists():
        wave = read_wave(sorted(ravdess.rglob("*.flac"))[0])
    else:
        wave = np.random.default_rng(0).standard_normal(3 * 16000).astype(np.float32) * 0.1
    clip3 = np.resize(wave, 3 * 16000)
    long = np.concatenate([np.resize(wave, 4 * 16000), np.zeros(16000, np.float32)] * 12)  # 60 s
    rows = [{"what": "3 s clip: trim + loudness + log-mel + model"}, {"what": "  trim + loudness"},
            {"what": "  log-mel (numpy)"}, {"what": "  model (ONNX Runtime)"}, {"what": "60 s recording"}]
    for model in models:
        rec = VoiceRecognizer(model, threads=1)
        prepared = prepare_clip(clip3)
        feats = features(prepared, rec.settings)
        x = windows(feats, rec.settings)
        t0 = time.perf_counter()
        result = rec.predict(long)
        long_s = time.perf_counter() - t0
        rows[0][model] = f"{median_ms(lambda: rec.classify_clip(prepare_clip(clip3))):.2f} ms"
        rows[1][model] = f"{median_ms(lambda: prepare_clip(clip3)):.2f} ms"
        rows[2][model] = f"{median_ms(lambda: features(prepared, rec.settings)):.2f} ms"
        rows[3][model] = f"{median_ms(lambda: rec.model.run(x)):.2f} ms"
        rows[4][model] = f"{long_s * 1000:.0f} ms ({60 / long_s:.0f}x real time, {len(result.segments)} segments)"
    return table(rows, ["what", *models])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", nargs="+", default=["default", "voice-cnn"],
                    help="voice model names or .onnx paths, compared in one run (default: %(default)s)")
    ap.add_argument("--leave-speakers-out", action="store_true",
                    help="also cross-validate the recipe over RAVDESS actors (trains a model per fold: slow)")
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "configs" / "voice_cnn.yaml"),
                    help="recipe for the fold models (default: %(default)s)")
    ap.add_argument("--folds", type=int, default=4, help="folds of RAVDESS actors (default: %(default)s)")
    ap.add_argument("--speakers", nargs="+", default=["01-16"], help="RAVDESS actors to fold (default: 01-16)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs per fold model (default: the recipe's)")
    ap.add_argument("--cv-out", default=None, help="where fold results go (default: the recipe's out_dir/cv)")
    args = ap.parse_args()

    for model in args.model:
        print(f"## Speaker-independent accuracy of {model} (speakers never trained on)\n")
        print(held_out_table(model) + "\n")
    if args.leave_speakers_out:
        print(f"\n## Cross-validation over RAVDESS actors {' '.join(args.speakers)}, {args.folds} folds, "
              f"last epoch scored\n")
        print(leave_speakers_out_table(args.config, args.folds, args.epochs, args.speakers, args.cv_out))
    print("\n## Latency on one thread\n")
    print(latency_table(args.model))


if __name__ == "__main__":
    main()
