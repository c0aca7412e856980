"""Speaker-independent k-fold cross-validation of a voice recipe.

    python -m moodlens.train.voice_cv --config configs/voice_cnn.yaml --folds 4 --speakers 01-16

The speakers of one corpus (``--corpus``, default ravdess; ``--speakers``, e.g.
actors 01-16) are cut into ``--folds`` contiguous blocks in natural order (for
RAVDESS 01-04, 05-08, ...: two men and two women each). Fold k trains the
recipe on the other blocks plus every other corpus of the recipe's
``data.train`` (SAVEE, EMO-DB: never validated on), for the recipe's fixed
number of epochs, and scores the last epoch's weights (EMA when on) on block k:
nothing is selected on the held-out speakers. The recipe's ``data.val`` is
ignored: keep your test speakers (actors 17-20) out of ``--speakers``.

Features of every clip are computed once per corpus and kept in
``<out>/../features/`` (``--cache``), so a fold costs only its training. The
report (printed, and ``summary.json`` in ``--out``) gives accuracy and UAR per
fold and their mean and standard deviation, per-class recall of the pooled
held-out predictions, and a softmax temperature fitted on those pooled
logits with the expected calibration error (15 bins) before and after it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from ..data.speech import (SpeechItem, drop_duplicates, expand_speakers, load_speech_corpus, normalise_speaker,
                           select_speakers)
from ..errors import DataError
from ..io import atomic_path
from ..runtime import softmax
from .calibration import ece, fit_temperature
from .config import CorpusSpec, VoiceTrainConfig, load_config
from .loop import Split, Trainer, predict_logits, uar
from .voice import FeatureCache, cached_features, map_labels, window_batch
from .voice_augment import augment_voice
from .voice_nets import build_voice_net


# --- folds ---------------------------------------------------------------------

def natural_key(speaker: str) -> tuple:
    """"2" before "10"; numeric ids before names."""
    s = normalise_speaker(speaker)
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def speaker_blocks(speakers, k: int) -> list[list[str]]:
    """``k`` contiguous blocks of the speakers in natural order, sizes differing by at most one.

    Raises :class:`DataError` for fewer than 2 folds or more folds than speakers.
    """
    ordered = sorted({normalise_speaker(s) for s in speakers}, key=natural_key)
    if k < 2:
        raise DataError(f"cross-validation needs 2 or more folds, not {k}")
    if k > len(ordered):
        raise DataError(f"{k} folds but only {len(ordered)} speaker(s) ({', '.join(ordered)}); "
                        f"every fold must hold out at least one speaker")
    size, extra = divmod(len(ordered), k)
    blocks, start = [], 0
    for j in range(k):
        stop = start + size + (j < extra)
        blocks.append(ordered[start:stop])
        start = stop
    return blocks


def check_speakers(items: list[SpeechItem], speakers, where: str) -> list[SpeechItem]:
    """Items of the listed speakers; every listed speaker must be present."""
    wanted = expand_speakers(speakers)
    present = {normalise_speaker(i.speaker) for i in items}
    missing = sorted(wanted - present, key=natural_key)
    if missing:
        raise DataError(f"{where}: speaker(s) {', '.join(missing)} not in the data; present: "
                        f"{', '.join(sorted(present, key=natural_key))}")
    return select_speakers(items, speakers, where)


# --- features ----------------------------------------------------------------

def merge_caches(caches: list[FeatureCache]) -> FeatureCache:
    flat = np.concatenate([c.flat for c in caches], axis=1)
    offsets, base = [np.zeros(1, np.int64)], 0
    for c in caches:
        offsets.append(c.offsets[1:] + base)
        base += c.offsets[-1]
    failed: dict[str, str] = {}
    for c in caches:
        failed.update(c.failed)
    return FeatureCache(flat, np.concatenate(offsets), sum((c.paths for c in caches), []), failed)


# --- the run -----------------------------------------------------------------

def _corpus_items(spec: CorpusSpec) -> list[SpeechItem]:
    items = load_speech_corpus(spec.corpus, spec.path, **spec.options)
    if spec.speakers is not None:
        items = check_speakers(items, spec.speakers, f"{spec.corpus} at {spec.path}")
    return drop_duplicates(items)[0]


def cross_validate(cfg: VoiceTrainConfig, folds: int = 4, speakers=("01-16",), corpus: str = "ravdess",
                   out_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                   only_folds: list[int] | None = None) -> dict:
    """Train ``folds`` models, each holding out a block of ``corpus``'s ``speakers``; see the module doc."""
    s, labels = cfg.features, tuple(cfg.data.labels)
    out = Path(out_dir or Path(cfg.out_dir) / "cv")
    cache_dir = Path(cache_dir or out.parent / "features")
    cache_dir.mkdir(parents=True, exist_ok=True)
    specs = [c for c in cfg.data.train if c.corpus.lower().replace("-", "") == corpus]
    if not specs:
        raise DataError(f"cross-validation over {corpus} speakers, but data.train has no {corpus} corpus "
                        f"({', '.join(c.corpus for c in cfg.data.train)})")
    main_spec = CorpusSpec(specs[0].corpus, specs[0].path, list(speakers), specs[0].options)
    groups = [(main_spec, True)] + [(c, False) for c in cfg.data.train if c not in specs]

    items_per_group, caches = [], []
    for spec, _ in groups:
        items, dropped = map_labels(_corpus_items(spec), labels, cfg.data.relabel)
        if dropped:
            print(f"{spec.corpus}: dropped (label not predicted): {dict(dropped)}")
        items_per_group.append(items)
        caches.append(cached_features(items, s, cache_dir, True, f"{spec.corpus} features"))
    cache = merge_caches(caches)
    items = sum(items_per_group, [])
    in_cv = np.concatenate([np.full(len(g), flag) for g, (_, flag) in zip(items_per_group, groups)])
    usable = np.array([str(i.path) not in cache.failed for i in items])
    y_all = np.array([labels.index(i.label) for i in items], np.int64)
    spk = np.array([normalise_speaker(i.speaker) for i in items])

    blocks = speaker_blocks(expand_speakers(speakers), folds)
    print(f"{folds} folds over {corpus} speakers: " + "; ".join(",".join(b) for b in blocks)
          + f"; always in training: {', '.join(sorted({c.corpus for c, f in groups if not f})) or 'nothing else'}")
    torch.set_num_threads(cfg.optim.threads or torch.get_num_threads())
    results, all_logits, all_true, all_fold = [], [], [], []
    started = time.time()
    for k, block in enumerate(blocks):
        if only_folds and k not in only_folds:
            continue
        held = in_cv & np.isin(spk, block)
        train_idx = np.flatnonzero(usable & ~held)
        val_idx = np.flatnonzero(usable & held)
        fold_cfg = dataclasses.replace(cfg, out_dir=str(out / f"fold{k + 1}"))
        train = Split(torch.from_numpy(train_idx), torch.from_numpy(y_all[train_idx]))
        val = Split(torch.from_numpy(val_idx), torch.from_numpy(y_all[val_idx]))
        net = build_voice_net(cfg.model.arch, len(labels), s.n_features, **dict(cfg.model.options))
        print(f"fold {k + 1}/{folds}: holding out {corpus} {','.join(block)} ({len(val_idx)} clips), "
              f"training on {len(train_idx)} clips", flush=True)
        trainer = Trainer(net, fold_cfg, train, val, len(labels),
                          lambda idx: window_batch(cache, idx, s, random=cfg.augment.shift),
                          lambda x, gen: augment_voice(x, cfg.augment, s, gen), {"task": "voice", "labels": list(labels)},
                          val_to_input=lambda idx: window_batch(cache, idx, s, random=False),
                          mixup=cfg.augment.mixup_alpha, save=False)
        trainer.fit()
        model = trainer.ema if trainer.ema is not None else trainer.model
        logits = predict_logits(model, val.x, trainer.val_to_input, cfg.optim).numpy()
        true = val.y.numpy()
        pred = logits.argmax(1)
        results.append({"fold": k + 1, "speakers": block, "n": int(len(true)), "accuracy": float((pred == true).mean()),
                        "uar": uar(pred, true, len(labels)),
                        "val_acc_by_epoch": [round(h["val_acc"], 4) for h in trainer.history]})
        print(f"fold {k + 1}: accuracy {results[-1]['accuracy']:.4f} UAR {results[-1]['uar']:.4f} "
              f"({(time.time() - started) / 60:.1f} min so far)", flush=True)
        all_logits.append(logits)
        all_true.append(true)
        all_fold.append(np.full(len(true), k + 1))
    summary = summarise(results, np.concatenate(all_logits), np.concatenate(all_true), labels)
    summary.update({"config": cfg.to_dict(), "corpus": corpus, "folds": folds, "minutes": (time.time() - started) / 60})
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    np.savez(out / "logits.npz", logits=np.concatenate(all_logits), true=np.concatenate(all_true),
             fold=np.concatenate(all_fold), labels=np.array(labels))
    print(render(summary))
    return summary


def summarise(results: list[dict], logits: np.ndarray, true: np.ndarray, labels: tuple[str, ...]) -> dict:
    acc = np.array([r["accuracy"] for r in results])
    uars = np.array([r["uar"] for r in results])
    pred = logits.argmax(1)
    recall = {l: float((pred[true == j] == j).mean()) for j, l in enumerate(labels) if (true == j).any()}
    t = fit_temperature(logits, true)
    curves = [r["val_acc_by_epoch"] for r in results]
    n_ep = min(len(c) for c in curves)
    mean_curve = np.mean([c[:n_ep] for c in curves], axis=0)
    std = (lambda a: float(a.std(ddof=1)) if len(a) > 1 else 0.0)
    return {
        "folds_result": results,
        "accuracy_mean": float(acc.mean()), "accuracy_std": std(acc),
        "uar_mean": float(uars.mean()), "uar_std": std(uars),
        "pooled_accuracy": float((pred == true).mean()), "pooled_recall": recall,
        "temperature": t, "ece_before": ece(softmax(logits), true), "ece_after": ece(softmax(logits / t), true),
        "mean_val_acc_by_epoch": [round(float(v), 4) for v in mean_curve],
    }


def render(summary: dict) -> str:
    lines = ["| fold | speakers | clips | accuracy | UAR |", "|---|---|---|---|---|"]
    for r in summary["folds_result"]:
        lines.append(f"| {r['fold']} | {','.join(r['speakers'])} | {r['n']} | {r['accuracy']:.4f} | {r['uar']:.4f} |")
    lines.append(f"| mean ± std | | | {summary['accuracy_mean']:.4f} ± {summary['accuracy_std']:.4f} | "
                 f"{summary['uar_mean']:.4f} ± {summary['uar_std']:.4f} |")
    lines.append("")
    lines.append("pooled recall: " + " ".join(f"{k} {v:.2f}" for k, v in summary["pooled_recall"].items()))
    lines.append(f"temperature {summary['temperature']:.3f}: ECE (15 bins) {summary['ece_before']:.4f} -> "
                 f"{summary['ece_after']:.4f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m moodlens.train.voice_cv", description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, help="voice recipe YAML")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override a recipe value (repeatable)")
    ap.add_argument("--folds", type=int, default=4, help="number of folds (default: %(default)s)")
    ap.add_argument("--speakers", nargs="+", default=["01-16"], help="speakers to cross-validate over (default: 01-16)")
    ap.add_argument("--corpus", default="ravdess", help="whose speakers are folded (default: %(default)s)")
    ap.add_argument("--out", type=Path, help="output folder (default: OUT_DIR/cv)")
    ap.add_argument("--cache", type=Path, help="feature cache folder (default: next to --out, features/)")
    ap.add_argument("--only-folds", type=int, nargs="+", help="run only these folds (1-based)")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides, task="voice")
        cross_validate(cfg, args.folds, args.speakers, args.corpus, args.out, args.cache,
                       [f - 1 for f in args.only_folds] if args.only_folds else None)
    except DataError as exc:
        print(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
