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
from ..voice.audio import FeatureSettings


@dataclass
class DataConfig:
    path: str = "../shared/data/fer2013/fer2013.csv.gz"  # FER-2013 CSV(.gz), .npz cache or image folders
    kind: str = "auto"  # auto | ckplus
    labels: str = "fer2013"  # fer2013 (original labels) | ferplus (majority votes from ferplus_path)
    ferplus_path: str | None = None  # fer2013new.csv, when labels: ferplus
    train_usage: list[str] = field(default_factory=lambda: ["Training"])  # splits to train on
    val_split: float = 0.1  # share of the train_usage rows held out (stratified by class) to pick epochs and settings on
    val_seed: int = 0  # seed of that split: the same seed gives the same rows on every machine
    val_usage: list[str] = field(default_factory=list)  # instead of val_split: whole splits to pick the epoch on (e.g. [PublicTest], the old flattering protocol)
    test_usage: list[str] = field(default_factory=lambda: ["PublicTest"])  # evaluated once after training, never used for any choice; [] = none


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
    mixup_alpha: float = 0.0  # mixup of whole batches (images and targets), Beta(a, a); 0 = off


@dataclass
class DistillConfig:
    soft_labels: str | None = None  # teachers' cached logits (moodlens distill face --teachers ... writes it); None = no distillation
    alpha: float = 0.5  # weight of the teachers' soft labels; 1 - alpha stays on the hard labels
    temperature: float = 2.0  # softening of teacher and student distributions (Hinton et al. 2015)
    ferplus_path: str | None = None  # fer2013new.csv: FER+ crowd votes as a further soft target (rows align with FER-2013's)
    ferplus_weight: float = 0.0  # share of the FER+ vote distribution in the soft target, on faces FER+ has votes for


@dataclass
class TrainConfig:
    task: str = "face"  # face (voice has its own recipe)
    name: str = "face-resnet"  # model name written into the card
    out_dir: str = "runs/face"  # checkpoints, logs, plots go here
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# --- voice recipes -------------------------------------------------------------
# Defaults reproduce voice-cnn (the single voice model): train on the shared RAVDESS actors
# 01-16 + SAVEE + EMO-DB, select the epoch on RAVDESS actors 17-20 (whole
# speakers held out), predict the eight RAVDESS emotions.

SHARED = "../shared/data"


@dataclass
class CorpusSpec:
    corpus: str = "ravdess"  # ravdess | cremad | tess | savee | emodb
    path: str = f"{SHARED}/ravdess"  # folder holding the corpus (searched recursively)
    speakers: list | None = None  # speaker ids to use, ranges allowed ("01-16"); None = every speaker
    options: dict[str, Any] = field(default_factory=dict)  # recipe keywords, e.g. {channels: [speech]} for ravdess


def _corpus_specs(entries: list, where: str) -> list[CorpusSpec]:
    if not isinstance(entries, list):
        raise DataError(f"{where}: expected a list of corpora, got {entries!r}")
    return [e if isinstance(e, CorpusSpec) else _build(CorpusSpec, e, f"{where}[{i}]") for i, e in enumerate(entries)]


def _default_voice_train() -> list[CorpusSpec]:
    return [CorpusSpec("ravdess", f"{SHARED}/ravdess", ["01-16"]), CorpusSpec("savee", f"{SHARED}/savee"),
            CorpusSpec("emodb", f"{SHARED}/emodb")]


@dataclass
class VoiceDataConfig:
    train: list = field(default_factory=_default_voice_train)  # corpora to learn from (list of CorpusSpec)
    val: list = field(default_factory=lambda: [CorpusSpec("ravdess", f"{SHARED}/ravdess", ["17-20"])])  # held-out speakers; [] = draw val_fraction of train's speakers
    val_fraction: float = 0.2  # share of each corpus's speakers held out when val is []
    labels: list = field(default_factory=lambda: ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "calm"])  # what the model predicts, in output order
    relabel: dict[str, str] = field(default_factory=dict)  # corpus label -> model label, e.g. {boredom: calm}; clips whose label is not in labels are dropped
    cache: bool = True  # keep log-mels of every clip in out_dir/features-*.npz (computed once)

    def __post_init__(self):
        self.train = _corpus_specs(self.train, "data.train")
        self.val = _corpus_specs(self.val, "data.val")


@dataclass
class VoiceAugmentConfig:
    """Applied on batches of log-mel windows in torch; each mirrors a waveform operation."""

    gain_db: float = 6.0  # +- random gain in dB (an offset in the log-mel domain)
    noise_p: float = 0.3  # probability of adding white noise
    noise_snr_db: tuple[float, float] = (10.0, 40.0)  # SNR range of that noise, dB relative to the clip's mean power
    reverb_p: float = 0.0  # probability of a room-like reverberation tail
    reverb_rt60: tuple[float, float] = (0.2, 0.8)  # s: time for the tail to decay by 60 dB (small room to hall)
    reverb_drr_db: tuple[float, float] = (0.0, 12.0)  # direct-to-reverberant energy ratio, dB
    shift: bool = True  # random placement of the 3 s window in the clip (random crop / random padding)
    speed_p: float = 0.5  # probability of speed perturbation (resampling: time and pitch change together)
    speed: tuple[float, float] = (0.9, 1.1)  # speed factor range
    pitch_p: float = 0.3  # probability of a pitch shift (frequency axis only)
    pitch_semitones: float = 2.0  # +- semitones
    time_masks: int = 2  # SpecAugment time masks per clip
    time_mask_frames: int = 25  # longest time mask, frames (10 ms each)
    freq_masks: int = 2  # SpecAugment frequency masks per clip
    freq_mask_bands: int = 8  # widest frequency mask, bands
    mixup_alpha: float = 0.0  # mixup of whole batches (inputs and targets), Beta(a, a); 0 = off


@dataclass
class VoiceTrainConfig:
    task: str = "voice"  # voice
    name: str = "voice-cnn"  # model name written into the card
    out_dir: str = "runs/voice_cnn"  # checkpoints, logs, plots, feature cache
    data: VoiceDataConfig = field(default_factory=VoiceDataConfig)
    features: FeatureSettings = field(default_factory=FeatureSettings)  # how clips become model inputs (voice/audio.py)
    model: ModelConfig = field(default_factory=lambda: ModelConfig(arch="cnn"))
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(
        epochs=60, batch_size=64, optimizer="adamw", lr=2e-3, weight_decay=0.05, warmup_epochs=2.0,
        class_weights="balanced", ema_decay=0.99))
    augment: VoiceAugmentConfig = field(default_factory=VoiceAugmentConfig)
    temperature: float = 1.0  # the exported graph returns logits / temperature (calibration; fit by moodlens.train.voice_cv)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls, values: dict, where: str, base=None):
    """``cls`` from ``values`` on top of ``base`` (default ``cls()``): a section that
    sets some keys keeps the recipe's defaults for the others (voice optim, say)."""
    if not isinstance(values, dict):
        raise DataError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise DataError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(known)}")
    base = cls() if base is None else base
    kwargs = {}
    for name, value in values.items():
        default = getattr(base, name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}", default)
        elif isinstance(default, tuple) and isinstance(value, list):
            kwargs[name] = tuple(value)
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            kwargs[name] = float(value)
        elif default is not None and not isinstance(default, (dict, list)) and not isinstance(value, type(default)):
            raise DataError(f"{where}.{name}: expected {type(default).__name__}, got {value!r}")
        else:
            kwargs[name] = value
    return dataclasses.replace(base, **kwargs)


def config_from_dict(values: dict, where: str = "config") -> "TrainConfig | VoiceTrainConfig":
    """The recipe's dataclass, chosen by its ``task`` key (face when absent)."""
    task = values.get("task", "face") if isinstance(values, dict) else "face"
    classes = {"face": TrainConfig, "voice": VoiceTrainConfig}
    if task not in classes:
        raise DataError(f"{where}.task: must be face or voice, not {task!r}")
    return _build(classes[task], values, where)


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


def load_config(path: str | Path | None, overrides: list[str] = (), task: str | None = None):
    """Read a recipe; ``task`` (from ``moodlens train TASK``) fills in or checks its task key."""
    values: dict = {}
    if path is not None:
        path = Path(path)
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DataError(f"{path}: cannot read config ({exc})") from exc
    values = apply_overrides(values, list(overrides))
    if task is not None:
        found = values.setdefault("task", task) if isinstance(values, dict) else task
        if found != task:
            raise DataError(f"{path or 'config'}: a {found} recipe, but `moodlens train {task}` was asked")
    return config_from_dict(values, str(path or "config"))
