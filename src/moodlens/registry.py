"""Bundled models by name: ``available_models()`` and ``load_model()``.

A bundled model is ``weights/<file>.onnx`` plus its model card
``weights/<file>.json``. ``default`` names the recommended model of each task.
A path to any moodlens ONNX file works wherever a name does.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import ModelError
from .runtime import OnnxModel, load_onnx

WEIGHTS = Path(__file__).with_name("weights")

# name -> (task, file stem). "default" is resolved per task.
BUNDLED: dict[str, tuple[str, str]] = {
    "face-resnet": ("face", "face_resnet"),
    "voice-ensemble": ("voice", "voice_ensemble"),  # 4 cross-validation fold models averaged
    "voice-cnn": ("voice", "voice_cnn"),  # one model, ~2x faster, a little less accurate
}
DEFAULTS = {"face": "face-resnet", "voice": "voice-ensemble"}


def available_models(task: str | None = None) -> list[str]:
    """Names of bundled models whose files are present, optionally of one task."""
    return [n for n, (t, stem) in BUNDLED.items()
            if (task is None or t == task) and (WEIGHTS / f"{stem}.onnx").is_file()]


def model_path(name_or_path: str, task: str) -> Path:
    if name_or_path == "default":
        if task not in DEFAULTS:
            raise ModelError(f"no default {task} model is bundled")
        name_or_path = DEFAULTS[task]
    if name_or_path in BUNDLED:
        path = WEIGHTS / f"{BUNDLED[name_or_path][1]}.onnx"
        if not path.is_file():
            raise ModelError(f"bundled model {name_or_path!r} is missing from this install ({path})")
        return path
    path = Path(name_or_path)
    if path.suffix == ".onnx" or path.exists():
        return path
    names = ", ".join(["default", *available_models(task)])
    raise ModelError(f"unknown model {name_or_path!r}; use one of {names}, or a path to an .onnx file")


def load_model(name_or_path: str = "default", task: str = "face", threads: int = 1) -> OnnxModel:
    return load_onnx(model_path(name_or_path, task), threads=threads, task=task)


def model_card(name: str) -> dict:
    if name not in BUNDLED:
        raise ModelError(f"unknown model {name!r}; bundled: {', '.join(BUNDLED)}")
    return json.loads((WEIGHTS / f"{BUNDLED[name][1]}.json").read_text())
