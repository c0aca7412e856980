"""Train a face emotion model from a recipe: data -> net -> Trainer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..data import FaceData, load_face_data, load_ferplus
from .augment import augment_images
from .config import TrainConfig
from .loop import Split, Trainer
from .nets import build_net, load_pretrained


def load_training_data(cfg: TrainConfig) -> tuple[FaceData, FaceData]:
    d = cfg.data
    if d.labels == "ferplus":
        if not d.ferplus_path:
            raise ValueError("data.labels: ferplus needs data.ferplus_path (fer2013new.csv)")
        data = load_ferplus(d.path, d.ferplus_path)
    elif d.labels == "fer2013":
        data = load_face_data(d.path, d.kind)
    else:
        raise ValueError(f"data.labels must be fer2013 or ferplus, not {d.labels!r}")
    return data.split(d.train_usage), data.split(d.val_usage)


def images_to_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 48, 48) -> float (N, 1, 48, 48) in [0, 1]; the runtime does the same."""
    return x.unsqueeze(1).float().div_(255.0)


def train_face(cfg: TrainConfig, resume: bool = False) -> dict:
    train, val = load_training_data(cfg)
    print(f"data: {len(train)} training, {len(val)} validation images from {train.source}")
    print("training class counts:", dict(zip(train.label_names, train.class_counts().tolist())))
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
                 "val_usage": cfg.data.val_usage, "labels": cfg.data.labels,
                 "train_count": len(train), "val_count": len(val)},
        "parameters": params,
    }
    trainer = Trainer(
        net, cfg,
        Split(torch.from_numpy(train.images), torch.from_numpy(train.labels)),
        Split(torch.from_numpy(val.images), torch.from_numpy(val.labels)),
        len(train.label_names), images_to_input,
        lambda x, gen: augment_images(x, cfg.augment, gen), card,
    )
    last = Path(cfg.out_dir) / "last.pt"
    if resume:
        if not last.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {last}")
        trainer.resume(last)
    return trainer.fit()


def class_counts(labels: np.ndarray, k: int) -> list[int]:
    return np.bincount(labels, minlength=k).tolist()
