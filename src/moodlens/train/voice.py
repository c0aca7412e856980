"""Train a voice emotion model from a recipe: corpora -> cached features -> net -> Trainer.

Clips are read, trimmed, normalised and turned into log-mels by the same
functions the recogniser uses (voice/audio.py), once: the features of every
clip are cached in ``out_dir/features-<hash>.npz`` (a few seconds to build for
~2,000 clips, reused by later runs and by --resume). Each training step cuts a
3 s window from each cached clip at a random place (the time shift) and
augments the batch in torch (voice_augment.py); validation uses the centred
window, as the recogniser does for a clip of up to 3 s.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.speech import SpeechItem, drop_duplicates, label_counts, load_speech_corpus, select_speakers
from ..errors import DataError, MoodlensError
from ..io import atomic_path
from ..labels import CANONICAL
from ..voice.audio import FeatureSettings, features, fit_frames, prepare_clip, read_wave, silence_column
from . import distributed
from .config import CorpusSpec, VoiceTrainConfig
from .loop import Split, Trainer, seed_everything
from .voice_augment import augment_voice
from .voice_nets import voice_net_for


def load_items(specs: list[CorpusSpec], where: str) -> list[SpeechItem]:
    items: list[SpeechItem] = []
    for i, spec in enumerate(specs):
        found = load_speech_corpus(spec.corpus, spec.path, **spec.options)
        items += select_speakers(found, spec.speakers, f"{where}[{i}] ({spec.corpus} at {spec.path})")
    return items


def map_labels(items: list[SpeechItem], labels: tuple[str, ...], relabel: dict[str, str]
               ) -> tuple[list[SpeechItem], Counter]:
    """Items relabelled to the model's labels; the others dropped (and counted)."""
    kept, dropped = [], Counter()
    for item in items:
        label = relabel.get(item.label, item.label)
        if label in labels:
            kept.append(item if label == item.label else SpeechItem(item.path, label, item.speaker, item.corpus, item.info))
        else:
            dropped[f"{item.corpus}:{item.label}"] += 1
    return kept, dropped


def build_sets(cfg: VoiceTrainConfig) -> tuple[list[SpeechItem], list[SpeechItem], dict]:
    """(train, val, notes): speaker-independent, de-duplicated, relabelled."""
    from ..data.speech import speaker_split

    d = cfg.data
    labels = tuple(d.labels)
    unknown = [l for l in (*labels, *d.relabel.values()) if l not in CANONICAL]
    if unknown:
        raise DataError(f"data.labels/relabel: unknown emotion(s) {', '.join(unknown)}; canonical: {', '.join(CANONICAL)}")
    train = load_items(d.train, "data.train")
    if d.val:
        val = load_items(d.val, "data.val")
    else:
        train, val = speaker_split(train, val_fraction=d.val_fraction, seed=cfg.optim.seed)
    shared = sorted({i.speaker_key for i in train} & {i.speaker_key for i in val})
    if shared:
        raise DataError(f"speakers in both training and validation data: {', '.join(shared)}; "
                        f"hold out whole speakers (data.train/val speakers)")
    train, dup_train = drop_duplicates(train)
    val, dup_val = drop_duplicates(val)
    train, dropped_train = map_labels(train, labels, d.relabel)
    val, dropped_val = map_labels(val, labels, d.relabel)
    if not train or not val:
        raise DataError(f"no {'training' if not train else 'validation'} clips left with labels {', '.join(labels)}")
    notes = {"duplicates_dropped": [str(p) for p, _ in dup_train + dup_val],
             "dropped_labels": dict(dropped_train + dropped_val)}
    return train, val, notes


@dataclass
class FeatureCache:
    flat: np.ndarray  # (F, total frames) features of all clips, concatenated
    offsets: np.ndarray  # (N + 1,) clip i is flat[:, offsets[i]:offsets[i + 1]]
    paths: list[str]  # the clips, in order
    failed: dict[str, str]  # path -> error, for clips that could not be used

    def clip(self, i: int) -> np.ndarray:
        return self.flat[:, self.offsets[i]:self.offsets[i + 1]]


def _cache_key(items: list[SpeechItem], s: FeatureSettings) -> str:
    h = hashlib.sha1(json.dumps(s.to_dict(), sort_keys=True).encode())
    for item in items:
        st = item.path.stat()
        h.update(f"{item.path}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def compute_features(items: list[SpeechItem], s: FeatureSettings, desc: str = "features") -> FeatureCache:
    from tqdm import tqdm

    chunks, lengths, failed = [], [], {}
    for item in tqdm(items, desc=desc, leave=False, mininterval=2, disable=None):
        try:
            feat = features(prepare_clip(read_wave(item.path, s.sample_rate), str(item.path), s.sample_rate), s)
        except MoodlensError as exc:
            failed[str(item.path)] = str(exc)
            feat = np.zeros((s.n_features, 0), np.float32)
        chunks.append(feat.astype(np.float16 if s.kind == "logmel" else np.float32))  # dB to ~0.03: plenty
        lengths.append(feat.shape[1])
    flat = np.concatenate(chunks, axis=1) if chunks else np.zeros((s.n_features, 0), np.float32)
    return FeatureCache(flat, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                        [str(i.path) for i in items], failed)


def cached_features(items: list[SpeechItem], s: FeatureSettings, out_dir: Path, use_cache: bool, desc: str) -> FeatureCache:
    if not use_cache:
        return compute_features(items, s, desc)
    path = out_dir / f"features-{_cache_key(items, s)}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        print(f"{desc}: using cached features {path}")
        return FeatureCache(z["flat"], z["offsets"], [str(p) for p in z["paths"]], json.loads(str(z["failed"])))
    cache = compute_features(items, s, desc)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, flat=cache.flat, offsets=cache.offsets, paths=np.array(cache.paths),
                     failed=np.array(json.dumps(cache.failed)))
    return cache


def window_batch(cache: FeatureCache, idx: torch.Tensor, s: FeatureSettings, random: bool) -> torch.Tensor:
    """(B, 1, F, clip_frames) windows; ``random`` places them at random (time shift)."""
    n, pad = s.clip_frames, silence_column(s)
    out = np.empty((len(idx), 1, s.n_features, n), np.float32)
    for row, i in enumerate(idx.tolist()):
        clip = cache.clip(i)
        start = None
        if random:
            start = int(torch.randint(0, abs(clip.shape[1] - n) + 1, ()).item())
        out[row, 0] = fit_frames(clip, n, start, pad)
    return torch.from_numpy(out)


def _split(items: list[SpeechItem], cache: FeatureCache, labels: tuple[str, ...], role: str) -> Split:
    ok = [i for i, item in enumerate(items) if str(item.path) not in cache.failed]
    for path, err in list(cache.failed.items())[:10]:
        print(f"  skipped ({role}): {err}")
    if len(cache.failed) > 10:
        print(f"  ... and {len(cache.failed) - 10} more {role} files skipped")
    y = torch.tensor([labels.index(items[i].label) for i in ok], dtype=torch.int64)
    return Split(torch.tensor(ok, dtype=torch.int64), y)


def describe(items: list[SpeechItem]) -> str:
    by_corpus = Counter(i.corpus for i in items)
    speakers = {c: len({i.speaker for i in items if i.corpus == c}) for c in by_corpus}
    return ", ".join(f"{c} {n} clips/{speakers[c]} speakers" for c, n in sorted(by_corpus.items()))


def voice_card(cfg: VoiceTrainConfig, train_items: list[SpeechItem], val_items: list[SpeechItem],
               train_count: int, val_count: int, params: int, notes: dict) -> dict:
    """The model card a voice checkpoint carries (export completes it)."""
    s = cfg.features
    return {
        "task": "voice",
        "labels": list(cfg.data.labels),
        "input": {"layout": "N,1,F,T", "features": s.to_dict(), "frames": s.clip_frames,
                  "sample_rate": s.sample_rate, "preprocessing": "moodlens.voice.audio: trim, loudness, features"},
        "data": {"train": [vars(c) for c in cfg.data.train], "val": [vars(c) for c in cfg.data.val],
                 "relabel": cfg.data.relabel, "train_count": train_count, "val_count": val_count,
                 "train_speakers": sorted({i.speaker_key for i in train_items}),
                 "val_speakers": sorted({i.speaker_key for i in val_items}),
                 "train_labels": label_counts(train_items), **notes},
        "parameters": params,
    }


def train_voice(cfg: VoiceTrainConfig, resume: bool = False, save: bool = True, epoch_callback=None,
                command: str = "") -> dict:
    """Train ``cfg``; ``save=False`` writes no checkpoints or logs (the feature cache is still
    kept) and ``epoch_callback`` gets each epoch's metrics (both for ``moodlens tune``'s trials)."""
    s = cfg.features
    labels = tuple(cfg.data.labels)
    train_items, val_items, notes = build_sets(cfg)
    print(f"data: training {len(train_items)} ({describe(train_items)}); validation {len(val_items)} ({describe(val_items)})")
    print("training labels:", label_counts(train_items))
    if notes["dropped_labels"]:
        print("dropped (label not predicted; see data.relabel):", notes["dropped_labels"])
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Under torchrun rank 0 builds the feature caches and the other ranks read them after it.
    world = distributed.current()
    if cfg.data.cache and not world.is_main:
        distributed.barrier(world)
    train_cache = cached_features(train_items, s, out, cfg.data.cache, "training features")
    val_cache = cached_features(val_items, s, out, cfg.data.cache, "validation features")
    if cfg.data.cache and world.is_main:
        distributed.barrier(world)
    train, val = _split(train_items, train_cache, labels, "training"), _split(val_items, val_cache, labels, "validation")

    seed_everything(cfg.optim.seed)  # the initial weights depend on the recipe's seed only
    net = voice_net_for(cfg, len(labels))
    params = sum(p.numel() for p in net.parameters())
    print(f"model: {cfg.model.arch} {cfg.model.options or ''} ({params / 1e6:.2f} M parameters), "
          f"input (1, {s.n_features}, {s.clip_frames})")
    card = voice_card(cfg, train_items, val_items, len(train.y), len(val.y), params, notes)
    card["trained_with"] = command  # the command line, for the card's "Reproduce"
    trainer = Trainer(
        net, cfg, train, val, len(labels),
        lambda idx: window_batch(train_cache, idx, s, random=cfg.augment.shift),
        lambda x, gen: augment_voice(x, cfg.augment, s, gen), card,
        val_to_input=lambda idx: window_batch(val_cache, idx, s, random=False), mixup=cfg.augment.mixup_alpha,
        save=save, epoch_callback=epoch_callback,
    )
    last = out / "last.pt"
    if resume:
        if not last.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {last}")
        trainer.resume(last)
    return trainer.fit()
