"""The in-memory form of a face corpus, and a loader that picks the recipe."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..labels import FER_EMOTIONS

FACE_SIZE = 48  # pixels; FER-2013 crops are 48x48


@dataclass
class FaceData:
    images: np.ndarray  # (N, 48, 48) uint8 grayscale
    labels: np.ndarray  # (N,) int64 index into label_names
    label_names: tuple[str, ...] = FER_EMOTIONS  # canonical names, model output order
    usage: np.ndarray | None = None  # (N,) str split tag (Training/PublicTest/...), if known
    soft: np.ndarray | None = None  # (N, K) float32 label distribution (FER+), if known
    source: str = ""  # where it was read from, for messages and reports
    names: list[str] = field(default_factory=list)  # per-row file name, if any

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask: np.ndarray) -> "FaceData":
        """Rows where ``mask`` is true (a boolean array or an index array)."""
        return FaceData(
            images=self.images[mask],
            labels=self.labels[mask],
            label_names=self.label_names,
            usage=None if self.usage is None else self.usage[mask],
            soft=None if self.soft is None else self.soft[mask],
            source=self.source,
            names=list(np.asarray(self.names, dtype=object)[mask]) if self.names else [],
        )

    def split(self, usage: str | list[str]) -> "FaceData":
        """Rows of one or more usage tags, e.g. ``"PublicTest"``."""
        wanted = [usage] if isinstance(usage, str) else list(usage)
        if self.usage is None:
            raise DataError(f"{self.source}: this data has no split tags, cannot select {wanted}")
        mask = np.isin(self.usage, wanted)
        if not mask.any():
            found = sorted(set(self.usage.tolist()))
            raise DataError(f"{self.source}: no rows with usage {wanted}; found {found}")
        return self.subset(mask)

    def holdout(self, fraction: float, seed: int = 0) -> tuple["FaceData", "FaceData"]:
        """(rest, held_out): ``fraction`` of the rows of each class, drawn with ``seed``."""
        held = stratified_mask(self.labels, fraction, seed)
        return self.subset(~held), self.subset(held)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.label_names))

    def save_npz(self, path: str | Path) -> None:
        """Compact cache for fast training; written to a temp file then renamed."""
        from ..io import atomic_path

        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(
                    fh,
                    images=self.images,
                    labels=self.labels,
                    label_names=np.array(self.label_names),
                    usage=np.array([] if self.usage is None else self.usage),
                    soft=np.zeros((0, 0), np.float32) if self.soft is None else self.soft,
                )


def stratified_mask(labels: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of ``round(fraction * n_c)`` rows of every class c (at least
    one of a class with two or more rows, so tiny data sets validate every class).

    Depends only on the labels, the fraction and the seed, so a recipe's
    validation rows are the same on every machine and every run.
    """
    if not 0 < fraction < 1:
        raise DataError(f"validation fraction must be between 0 and 1, not {fraction}")
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        take = max(round(fraction * len(rows)), 1 if len(rows) > 1 else 0)
        mask[rng.permutation(rows)[:take]] = True
    return mask


def load_npz(path: str | Path) -> FaceData:
    try:
        z = np.load(path, allow_pickle=False)
        usage = z["usage"]
        soft = z["soft"]
        return FaceData(
            images=z["images"],
            labels=z["labels"].astype(np.int64),
            label_names=tuple(str(s) for s in z["label_names"]),
            usage=usage if usage.size else None,
            soft=soft if soft.size else None,
            source=str(path),
        )
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a moodlens face cache ({exc})") from exc


def load_face_data(path: str | Path, kind: str = "auto") -> FaceData:
    """Load a face corpus from a FER-2013 CSV (.csv/.csv.gz), a cache (.npz), an
    image-folder tree (``train/<class>/*.jpg``) or CK+48 (``kind="ckplus"``)."""
    from .fer2013 import load_fer2013
    from .folders import load_ckplus, load_image_folder

    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    if kind == "ckplus":
        return load_ckplus(p)
    if p.is_dir():
        return load_image_folder(p)
    if p.name.endswith(".npz"):
        return load_npz(p)
    if p.name.endswith((".csv", ".csv.gz")):
        return load_fer2013(p)
    raise DataError(f"{p}: unknown face data format (expected .csv, .csv.gz, .npz or a folder)")
