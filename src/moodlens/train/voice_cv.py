"""Speaker-independent k-fold cross-validation of a voice recipe.

    python -m moodlens.train.voice_cv --config configs/voice_cnn.yaml --folds 4 --speakers 01-16

The speakers of one corpus (``--corpus``, default ravdess; ``--speakers``, e.g.
actors 01-16) are cut into ``--folds`` contiguous blocks in natural order (for
RAVDESS 01-04, 05-08, ...: two men and two women each). Fold k trains the
recipe on the other blocks plus every other corpus of the recipe's
``data.train`` (SAVEE, EMO-DB: never validated on), for the recipe's fixed
number of epochs, and scores the last epoch's weights (EMA when on) on block k:
nothing is selected on the held-out speakers. The recipe's ``data.val`` is
not trained on: keep your test speakers (actors 17-20) out of ``--speakers``.

Features of every clip are computed once per corpus and kept in
``<out>/../features/`` (``--cache``), so a fold costs only its training;
``--jobs 2`` trains two folds at once in separate processes. Each fold's
last weights are kept (``<out>/fold<k>/last.pt``), and ``--test`` then scores
every fold model and their average on the recipe's ``data.val`` speakers. The
report (printed, and ``summary.json`` in ``--out``) gives accuracy and UAR per
fold and their mean and standard deviation, per-class recall of the pooled
held-out predictions, and a softmax temperature fitted on those pooled
logits with the expected calibration error (15 bins) before and after it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
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
from .export import load_checkpoint
from .loop import Split, Trainer, predict_logits, seed_everything, uar
from .voice import FeatureCache, cached_features, map_labels, voice_card, window_batch
from .voice_augment import augment_voice
from .voice_nets import voice_net_for


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


@dataclasses.dataclass
class Prepared:
    """Every clip of the cross-validation with its features, label, speaker and fold membership."""

    cache: FeatureCache
    items: list[SpeechItem]  # every clip, in cache order
    dropped: dict[str, int]  # corpus:label -> clips dropped (label not predicted)
    y: np.ndarray  # label index per clip
    speaker: np.ndarray  # normalised speaker id per clip
    in_cv: np.ndarray  # True for clips of the folded corpus (the others always train)
    usable: np.ndarray  # False for clips whose features could not be computed
    blocks: list[list[str]]  # held-out speakers of each fold


def prepare(cfg: VoiceTrainConfig, folds: int, speakers, corpus: str, cache_dir: Path, quiet: bool = False) -> Prepared:
    """Load the corpora, compute (or reuse) their features and cut the speakers into folds."""
    s, labels = cfg.features, tuple(cfg.data.labels)
    specs = [c for c in cfg.data.train if c.corpus.lower().replace("-", "") == corpus]
    if not specs:
        raise DataError(f"cross-validation over {corpus} speakers, but data.train has no {corpus} corpus "
                        f"({', '.join(c.corpus for c in cfg.data.train)})")
    blocks = speaker_blocks(expand_speakers(speakers), folds)
    main_spec = CorpusSpec(specs[0].corpus, specs[0].path, list(speakers), specs[0].options)
    groups = [(main_spec, True)] + [(c, False) for c in cfg.data.train if c not in specs]
    items_per_group, caches, all_dropped = [], [], {}
    for spec, _ in groups:
        items, dropped = map_labels(_corpus_items(spec), labels, cfg.data.relabel)
        all_dropped.update(dropped)
        if dropped and not quiet:
            print(f"{spec.corpus}: dropped (label not predicted): {dict(dropped)}")
        items_per_group.append(items)
        caches.append(cached_features(items, s, cache_dir, True, f"{spec.corpus} features"))
    cache = merge_caches(caches)
    items = sum(items_per_group, [])
    if not quiet:
        print(f"{folds} folds over {corpus} speakers: " + "; ".join(",".join(b) for b in blocks)
              + f"; always in training: {', '.join(sorted({c.corpus for c, f in groups if not f})) or 'nothing else'}")
    return Prepared(
        cache=cache, items=items, dropped=all_dropped, y=np.array([labels.index(i.label) for i in items], np.int64),
        speaker=np.array([normalise_speaker(i.speaker) for i in items]),
        in_cv=np.concatenate([np.full(len(g), flag) for g, (_, flag) in zip(items_per_group, groups)]),
        usable=np.array([str(i.path) not in cache.failed for i in items]), blocks=blocks)


def run_fold(cfg: VoiceTrainConfig, data: Prepared, k: int, out: Path, corpus: str = "ravdess",
             command: str = "") -> tuple[dict, np.ndarray, np.ndarray]:
    """Train fold ``k`` (0-based) for the recipe's epochs; its result, held-out logits and labels.

    The last epoch's weights are saved as ``out/fold<k+1>/last.pt`` (a checkpoint
    ``moodlens export voice`` takes), so the fold models can be exported and averaged.
    """
    s, labels, block = cfg.features, tuple(cfg.data.labels), data.blocks[k]
    held = data.in_cv & np.isin(data.speaker, block)
    train_idx = np.flatnonzero(data.usable & ~held)
    val_idx = np.flatnonzero(data.usable & held)
    fold_cfg = dataclasses.replace(cfg, out_dir=str(out / f"fold{k + 1}"))
    train = Split(torch.from_numpy(train_idx), torch.from_numpy(data.y[train_idx]))
    val = Split(torch.from_numpy(val_idx), torch.from_numpy(data.y[val_idx]))
    seed_everything(cfg.optim.seed)  # the net's initial weights follow the recipe's seed
    net = voice_net_for(cfg, len(labels))
    card = voice_card(fold_cfg, [data.items[i] for i in train_idx], [data.items[i] for i in val_idx], len(train_idx),
                      len(val_idx), sum(p.numel() for p in net.parameters()),
                      {"dropped_labels": data.dropped, "cross_validation_fold": {"fold": k + 1, "held_out": block}})
    card["trained_with"] = command
    print(f"fold {k + 1}/{len(data.blocks)}: holding out {corpus} {','.join(block)} ({len(val_idx)} clips), "
          f"training on {len(train_idx)} clips", flush=True)
    cache = data.cache
    trainer = Trainer(net, fold_cfg, train, val, len(labels),
                      lambda idx: window_batch(cache, idx, s, random=cfg.augment.shift),
                      lambda x, gen: augment_voice(x, cfg.augment, s, gen), card,
                      val_to_input=lambda idx: window_batch(cache, idx, s, random=False),
                      mixup=cfg.augment.mixup_alpha, save=False)
    trainer.fit()
    trainer.save_checkpoint("last.pt")
    model = trainer.ema if trainer.ema is not None else trainer.model
    logits = predict_logits(model, val.x, trainer.val_to_input, cfg.optim).numpy()
    true = val.y.numpy()
    pred = logits.argmax(1)
    result = {"fold": k + 1, "speakers": block, "n": int(len(true)), "accuracy": float((pred == true).mean()),
              "uar": uar(pred, true, len(labels)), "val_acc_by_epoch": [round(h["val_acc"], 4) for h in trainer.history]}
    print(f"fold {k + 1}: accuracy {result['accuracy']:.4f} UAR {result['uar']:.4f}", flush=True)
    return result, logits, true


def in_processes(fn, arg_tuples: list[tuple], jobs: int) -> list:
    """``[fn(*args) for args in arg_tuples]`` in up to ``jobs`` spawned processes.

    Stopping the parent stops the workers: Ctrl+C or a SIGTERM (``kill PID``,
    a scheduler's timeout) ends the pool, which terminates them, instead of
    leaving orphans that train on for an hour."""
    import multiprocessing
    import signal
    import threading

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    main = threading.current_thread() is threading.main_thread()  # only the main thread may set handlers
    previous = signal.signal(signal.SIGTERM, stop) if main else None
    try:
        with multiprocessing.get_context("spawn").Pool(min(jobs, len(arg_tuples))) as pool:
            return pool.starmap(fn, arg_tuples, chunksize=1)  # leaving the block terminates the workers
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def _fold_job(cfg, folds, speakers, corpus, cache_dir, out, k, command):
    """One fold in a worker process (``--jobs``): features come from the cache the parent filled."""
    return run_fold(cfg, prepare(cfg, folds, speakers, corpus, cache_dir, quiet=True), k, out, corpus, command)


def cross_validate(cfg: VoiceTrainConfig, folds: int = 4, speakers=("01-16",), corpus: str = "ravdess",
                   out_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                   only_folds: list[int] | None = None, jobs: int = 1, test: bool = False, command: str = "") -> dict:
    """Train ``folds`` models, each holding out a block of ``corpus``'s ``speakers``; see the module doc."""
    labels = tuple(cfg.data.labels)
    out = Path(out_dir or Path(cfg.out_dir) / "cv")
    cache_dir = Path(cache_dir or out.parent / "features")
    cache_dir.mkdir(parents=True, exist_ok=True)
    data = prepare(cfg, folds, speakers, corpus, cache_dir)
    todo = [k for k in range(folds) if not only_folds or k in only_folds]
    if test:
        test_items = _test_items(cfg, speakers, corpus)  # checked before hours of training, not after
    started = time.time()
    if jobs > 1 and len(todo) > 1:
        print(f"running {len(todo)} folds in {min(jobs, len(todo))} processes", flush=True)
        runs = in_processes(_fold_job, [(cfg, folds, speakers, corpus, cache_dir, out, k, command) for k in todo], jobs)
    else:
        torch.set_num_threads(cfg.optim.threads or torch.get_num_threads())
        runs = [run_fold(cfg, data, k, out, corpus, command) for k in todo]
    results = [r for r, _, _ in runs]
    all_logits, all_true = [l for _, l, _ in runs], [t for _, _, t in runs]
    summary = summarise(results, np.concatenate(all_logits), np.concatenate(all_true), labels)
    summary.update({"config": cfg.to_dict(), "corpus": corpus, "folds": folds, "minutes": (time.time() - started) / 60})
    if test:
        summary["test"] = score_test(cfg, [out / f"fold{k + 1}" / "last.pt" for k in todo], test_items, cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    np.savez(out / "logits.npz", logits=np.concatenate(all_logits), true=np.concatenate(all_true),
             fold=np.concatenate([np.full(len(t), r["fold"]) for r, t in zip(results, all_true)]),
             labels=np.array(labels))
    print(render(summary))
    return summary


# --- the test speakers ---------------------------------------------------------

def _test_items(cfg: VoiceTrainConfig, speakers, corpus: str) -> list[SpeechItem]:
    """The recipe's data.val clips (actors 17-20): the test, which must share no speaker with the folds."""
    if not cfg.data.val:
        raise DataError("--test scores the fold models on the recipe's data.val speakers, but data.val is empty")
    folded = expand_speakers(speakers)
    items = []
    for spec in cfg.data.val:
        spec_items = _corpus_items(spec)
        if spec.corpus.lower().replace("-", "") == corpus:
            overlap = folded & {normalise_speaker(i.speaker) for i in spec_items}
            if overlap:
                raise DataError(f"--test: data.val speakers {', '.join(sorted(overlap, key=natural_key))} are also "
                                f"cross-validated; keep the test speakers out of --speakers")
        items += map_labels(spec_items, tuple(cfg.data.labels), cfg.data.relabel)[0]
    return items


def score_test(cfg: VoiceTrainConfig, checkpoints: list[Path], items: list[SpeechItem], cache_dir: Path) -> dict:
    """Each fold model and their average (mean probabilities) on the test clips.

    Reported, never used to choose anything: the settings were fixed by the folds.
    """
    s, labels = cfg.features, tuple(cfg.data.labels)
    cache = cached_features(items, s, cache_dir, True, "test features")
    keep = np.array([str(i.path) not in cache.failed for i in items])
    idx = torch.from_numpy(np.flatnonzero(keep))
    true = np.array([labels.index(i.label) for i in items], np.int64)[keep]
    to_input = lambda ix: window_batch(cache, ix, s, random=False)  # noqa: E731
    probs, members = [], []
    for path in checkpoints:
        net, _ = load_checkpoint(path)  # EMA weights when trained with them, as the folds were scored
        p = softmax(predict_logits(net, idx, to_input, cfg.optim).numpy())
        probs.append(p)
        members.append({"checkpoint": str(path), "accuracy": float((p.argmax(1) == true).mean()),
                        "uar": uar(p.argmax(1), true, len(labels))})
    mean = np.mean(probs, axis=0)
    pred = mean.argmax(1)
    return {"clips": int(len(true)), "members": members,
            "member_accuracy_mean": float(np.mean([m["accuracy"] for m in members])),
            "ensemble_accuracy": float((pred == true).mean()), "ensemble_uar": uar(pred, true, len(labels)),
            "ensemble_recall": {l: float((pred[true == j] == j).mean()) for j, l in enumerate(labels) if (true == j).any()},
            "ensemble_ece": ece(mean, true)}


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
    if "test" in summary:
        t = summary["test"]
        lines.append(f"test ({t['clips']} clips): fold models {t['member_accuracy_mean']:.4f} on average; their "
                     f"average: accuracy {t['ensemble_accuracy']:.4f} UAR {t['ensemble_uar']:.4f}; recall "
                     + " ".join(f"{k} {v:.2f}" for k, v in t["ensemble_recall"].items()))
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
    ap.add_argument("--jobs", type=int, default=1,
                    help="folds trained at once, each in its own process (default: %(default)s; 2 on 2 cores with "
                         "optim.threads 1)")
    ap.add_argument("--test", action="store_true",
                    help="then score each fold model and their average on the recipe's data.val speakers "
                         "(the test; reported, never chosen on)")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides, task="voice")
        cross_validate(cfg, args.folds, args.speakers, args.corpus, args.out, args.cache,
                       [f - 1 for f in args.only_folds] if args.only_folds else None, args.jobs, args.test,
                       command=" ".join(["python -m moodlens.train.voice_cv", *map(shlex.quote, argv or sys.argv[1:])]))
    except DataError as exc:
        print(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
