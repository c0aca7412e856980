"""Train a face emotion model from a recipe: data -> net -> Trainer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..data import FaceData, load_face_data, load_ferplus
from ..errors import DataError
from .augment import augment_images
from .config import TrainConfig
from .distill import ferplus_targets, load_soft_labels, teacher_targets
from .loop import Split, Trainer, seed_everything
from .nets import build_net, load_pretrained


def load_training_data(cfg: TrainConfig) -> tuple[FaceData, FaceData]:
    """(train, val): val is ``val_split`` of the training rows, or whole ``val_usage`` splits."""
    data = load_all(cfg)
    d = cfg.data
    train = data.split(d.train_usage)
    if uses_soft_targets(cfg):  # the soft targets travel with their rows through the split
        train.soft = soft_targets(cfg, data, train)
    if d.val_split and d.val_usage:
        raise DataError("data: set val_split (rows held out of train_usage) or val_usage (whole splits), not both")
    if d.val_split:
        return train.holdout(d.val_split, d.val_seed)
    if not d.val_usage:
        raise DataError("data: no validation data; set val_split (e.g. 0.1) or val_usage")
    return train, data.split(d.val_usage)


def uses_soft_targets(cfg: TrainConfig) -> bool:
    return bool(cfg.distill.soft_labels or cfg.distill.ferplus_weight)


def soft_targets(cfg: TrainConfig, data: FaceData, train: FaceData) -> np.ndarray:
    """(N, K) soft targets of the training rows: the teachers' distribution, the
    one-hot label where there are no teachers, and FER+'s votes mixed in by
    ``ferplus_weight`` on the faces FER+ has votes for."""
    k = len(train.label_names)
    if cfg.distill.soft_labels:
        logits = load_soft_labels(cfg.distill.soft_labels, len(train), train.label_names)
        target = teacher_targets(logits, cfg.distill.temperature).numpy()
    else:
        target = np.eye(k, dtype=np.float32)[train.labels]
    w = cfg.distill.ferplus_weight
    if w:
        if not cfg.distill.ferplus_path or data.usage is None:
            raise DataError("distill.ferplus_weight needs distill.ferplus_path and FER-2013 data with a Usage column")
        votes, has = ferplus_targets(cfg.distill.ferplus_path, data.usage, cfg.data.train_usage, train.label_names)
        mix = w * has[:, None].astype(np.float32)
        target = (1 - mix) * target + mix * votes
    return target.astype(np.float32)


def load_all(cfg: TrainConfig) -> FaceData:
    d = cfg.data
    if d.labels == "ferplus":
        if not d.ferplus_path:
            raise ValueError("data.labels: ferplus needs data.ferplus_path (fer2013new.csv)")
        data = load_ferplus(d.path, d.ferplus_path)
    elif d.labels == "fer2013":
        data = load_face_data(d.path, d.kind)
    else:
        raise ValueError(f"data.labels must be fer2013 or ferplus, not {d.labels!r}")
    return data


def images_to_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 48, 48) -> float (N, 1, 48, 48) in [0, 1]; the runtime does the same."""
    return x.unsqueeze(1).float().div_(255.0)


def train_face(cfg: TrainConfig, resume: bool = False, save: bool = True, epoch_callback=None,
               command: str = "") -> dict:
    """Train ``cfg``; ``save=False`` writes no checkpoints or logs and ``epoch_callback``
    gets each epoch's metrics (both for ``moodlens tune``'s trials)."""
    train, val = load_training_data(cfg)
    print(f"data: {len(train)} training, {len(val)} validation images from {train.source}")
    print("training class counts:", dict(zip(train.label_names, train.class_counts().tolist())))
    seed_everything(cfg.optim.seed)  # the initial weights depend on the recipe's seed only
    net = build_net(cfg.model.arch, len(train.label_names), **cfg.model.options)
    if cfg.model.pretrained:
        skipped = load_pretrained(net, cfg.model.pretrained)
        print(f"started from {cfg.model.pretrained}; not transferred: {', '.join(skipped) or 'none'}")
    params = sum(p.numel() for p in net.parameters())
    print(f"model: {cfg.model.arch} {cfg.model.options or ''} ({params / 1e6:.2f} M parameters)")
    card = {
        "task": "face",
        "labels": list(train.label_names),
        "input": {"size": [48, 48], "channels": 1, "scale": "pixels / 255", "normalisation": "inside the model"},
        "data": {"source": str(train.source), "train_usage": cfg.data.train_usage,
                 "val_usage": cfg.data.val_usage, "val_split": cfg.data.val_split, "val_seed": cfg.data.val_seed,
                 "labels": cfg.data.labels,
                 "train_count": len(train), "val_count": len(val)},
        "parameters": params,
        "trained_with": command,  # the command line, for the card's "Reproduce"
    }
    trainer = Trainer(
        net, cfg,
        Split(torch.from_numpy(train.images), torch.from_numpy(train.labels),
              torch.from_numpy(train.soft) if uses_soft_targets(cfg) else None),
        Split(torch.from_numpy(val.images), torch.from_numpy(val.labels)),
        len(train.label_names), images_to_input,
        lambda x, gen: augment_images(x, cfg.augment, gen), card,
        mixup=cfg.augment.mixup_alpha, save=save, epoch_callback=epoch_callback,
    )
    last = Path(cfg.out_dir) / "last.pt"
    if resume:
        if not last.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {last}")
        trainer.resume(last)
    result = trainer.fit()
    if cfg.data.test_usage and trainer.world.is_main:
        result["test"] = report_test(cfg, trainer)
    return result


def report_test(cfg: TrainConfig, trainer: Trainer) -> dict:
    """Accuracy of the best checkpoint on ``test_usage``, measured once at the end.

    Written to ``out_dir/test.json`` for the record; nothing reads it back to
    choose anything (epochs and settings are chosen on the validation data).
    """
    from ..io import atomic_path
    from .export import load_checkpoint
    from .loop import predict_logits

    test = load_all(cfg).split(cfg.data.test_usage)
    best = Path(cfg.out_dir) / "best.pt"
    if best.exists():
        net, state = load_checkpoint(best)
    else:  # a run that saves nothing (save=False) tests the weights it has
        net, state = (trainer.ema if trainer.ema is not None else trainer.model), {"epoch": trainer.epoch}
    x = torch.from_numpy(test.images)
    logits = predict_logits(net, x, images_to_input, cfg.optim)
    flipped = predict_logits(net, x.flip(-1), images_to_input, cfg.optim)
    y = test.labels
    report = {"usage": cfg.data.test_usage, "images": len(test), "epoch": state["epoch"],
              "accuracy": float((logits.argmax(1).numpy() == y).mean()),
              "accuracy_flip_tta": float(((logits.softmax(1) + flipped.softmax(1)).argmax(1).numpy() == y).mean())}
    print(f"test ({', '.join(cfg.data.test_usage)}, {len(test)} images, best epoch {state['epoch']}): "
          f"accuracy {report['accuracy']:.4f}, with flip {report['accuracy_flip_tta']:.4f} "
          f"(reported only; nothing was chosen on it)")
    with atomic_path(Path(cfg.out_dir) / "test.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report


def class_counts(labels: np.ndarray, k: int) -> list[int]:
    return np.bincount(labels, minlength=k).tolist()
