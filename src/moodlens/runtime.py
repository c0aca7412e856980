"""ONNX Runtime sessions for moodlens models, and the metadata they carry.

Every exported model stores one JSON document under the ONNX metadata key
``moodlens``: task, labels, input layout and the model card. Nothing about a
model is guessed from its file name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ModelError

METADATA_KEY = "moodlens"
REQUIRED_KEYS = ("task", "labels", "input")


@dataclass
class OnnxModel:
    path: Path  # the .onnx file
    meta: dict  # the "moodlens" metadata document
    session: object  # onnxruntime.InferenceSession

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.meta["labels"])

    @property
    def task(self) -> str:
        return self.meta["task"]

    def run(self, x: np.ndarray) -> np.ndarray:
        """Logits for a float32 batch laid out as the metadata's ``input`` says."""
        name = self.session.get_inputs()[0].name
        return self.session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        return softmax(self.run(x))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def read_metadata(path: str | Path) -> dict:
    """The moodlens metadata of an ONNX file."""
    session = onnx_session(Path(path), threads=1)
    return _metadata(Path(path), session)


def onnx_session(path: Path, threads: int):
    import onnxruntime as ort

    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0]})") from exc


def _metadata(path: Path, session) -> dict:
    raw = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
    if raw is None:
        raise ModelError(f"{path}: ONNX model has no '{METADATA_KEY}' metadata; export it with `moodlens export`")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: '{METADATA_KEY}' metadata is not valid JSON ({exc})") from exc
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise ModelError(f"{path}: metadata lacks {', '.join(missing)}")
    return meta


def load_onnx(path: str | Path, threads: int = 1, task: str | None = None) -> OnnxModel:
    """Open a moodlens ONNX model; ``task`` checks it is a face/voice model."""
    path = Path(path)
    session = onnx_session(path, threads)
    meta = _metadata(path, session)
    if task is not None and meta["task"] != task:
        raise ModelError(f"{path}: a {meta['task']} model, but a {task} model is needed")
    return OnnxModel(path=path, meta=meta, session=session)
