"""Training recipes: YAML files mapped onto dataclasses; unknown keys are errors.

Every field has a comment; ``configs/*.yaml`` repeat them for users. Values can be
overridden from the command line with ``--set section.key=value`` (YAML syntax).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import DataError


@dataclass
class DataConfig:
    path: str = "../shared/data/fer2013/fer2013.csv.gz"  # FER-2013 CSV(.gz), .npz cache or image folders
    kind: str = "auto"  # auto | ckplus
    labels: str = "fer2013"  # fer2013 (original labels) | ferplus (majority votes from ferplus_path)
    ferplus_path: str | None = None  # fer2013new.csv, when labels: ferplus
    train_usage: list[str] = field(default_factory=lambda: ["Training"])  # splits to train on
    val_usage: list[str] = field(default_factory=lambda: ["PublicTest"])  # split to select the best epoch on


@dataclass
class ModelConfig:
    arch: str = "resnet"  # baseline | resnet | vgg | mobilenetv2
    options: dict[str, Any] = field(default_factory=dict)  # constructor keywords, e.g. widths
    pretrained: str | None = None  # local state-dict file to start from (never downloaded)


@dataclass
class OptimConfig:
    epochs: int = 60  # full passes over the training split
    batch_size: int = 128  # 128 is the fastest on a 2-core CPU (COMPUTE.md)
    optimizer: str = "sgd"  # sgd (Nesterov) | adamw
    lr: float = 0.1  # peak learning rate after warm-up
    momentum: float = 0.9  # SGD momentum
    weight_decay: float = 5e-4  # L2 on weights (decoupled for adamw)
    warmup_epochs: float = 2.0  # linear warm-up from lr/25
    schedule: str = "cosine"  # cosine | constant
    label_smoothing: float = 0.1  # cross-entropy target smoothing
    loss: str = "ce"  # ce | focal
    focal_gamma: float = 2.0  # focusing exponent when loss: focal
    class_weights: str = "none"  # none | balanced (1/freq) | sqrt (1/sqrt(freq)), normalised to mean 1
    ema_decay: float = 0.999  # exponential moving average of weights, evaluated and exported; 0 = off
    patience: int = 0  # early stopping: epochs without val improvement before stopping; 0 = off
    bf16: bool = True  # bfloat16 autocast: ~2x faster on AVX-512 CPUs (not for mobilenetv2)
    channels_last: bool = True  # memory layout that convs prefer on CPU
    threads: int = 0  # torch threads; 0 = all cores
    seed: int = 0  # seeds python, numpy and torch


@dataclass
class AugmentConfig:
    hflip: float = 0.5  # probability of a horizontal flip
    rotate_deg: float = 10.0  # uniform rotation in +-degrees
    scale: tuple[float, float] = (0.9, 1.1)  # zoom range
    shift: float = 0.1  # translation, fraction of the side
    erase_p: float = 0.5  # probability of erasing one random rectangle
    erase_area: tuple[float, float] = (0.02, 0.2)  # erased fraction of the image
    brightness: float = 0.2  # +- additive brightness (images in [0, 1])
    contrast: float = 0.2  # +- multiplicative contrast around the image mean


@dataclass
class TrainConfig:
    task: str = "face"  # face (voice has its own recipe)
    name: str = "face-resnet"  # model name written into the card
    out_dir: str = "runs/face"  # checkpoints, logs, plots go here
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls, values: dict, where: str):
    if not isinstance(values, dict):
        raise DataError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise DataError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(known)}")
    kwargs = {}
    for name, value in values.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple) and isinstance(value, list):
            kwargs[name] = tuple(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            kwargs[name] = float(value)
        elif default is not None and not isinstance(default, (dict, list)) and not isinstance(value, type(default)):
            raise DataError(f"{where}.{name}: expected {type(default).__name__}, got {value!r}")
        else:
            kwargs[name] = value
    return cls(**kwargs)


def config_from_dict(values: dict, where: str = "config") -> TrainConfig:
    return _build(TrainConfig, values, where)


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    """Apply ``section.key=value`` strings (values parsed as YAML) to a dict."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise DataError(f"--set {item!r}: expected section.key=value")
        node = values
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return values


def load_config(path: str | Path | None, overrides: list[str] = ()) -> TrainConfig:
    values: dict = {}
    if path is not None:
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DataError(f"{path}: cannot read config ({exc})") from exc
    return config_from_dict(apply_overrides(values, list(overrides)), str(path or "config"))
