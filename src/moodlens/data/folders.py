"""Image-folder corpora: FER-2013's folder variant and CK+48.

About the datasets
------------------
*FER-2013 image folders* (e.g. Kaggle "msambare/fer2013"): ``train/<class>/*.jpg``
and ``test/<class>/*.jpg`` with class folders angry, disgust, fear, happy,
neutral, sad, surprise. Same images and terms as the CSV.

*CK+48* (Kaggle's crop of the Extended Cohn-Kanade set, Lucey et al. 2010; the
original requires a signed agreement with the University of Pittsburgh, research
only): ``CK+48/<class>/*.png`` with anger, contempt, disgust, fear, happy,
sadness, surprise (981 images). It has no neutral class; contempt is kept as the
canonical ``contempt`` label.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError
from ..labels import CKPLUS_FOLDERS, FER_EMOTIONS, FOLDER_ALIASES
from .facedata import FACE_SIZE, FaceData

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
# Folder names that mark a split; anything else at the top level is a class folder.
SPLIT_FOLDERS = {"train": "Training", "training": "Training", "val": "PublicTest",
                 "validation": "PublicTest", "test": "PublicTest"}


def _read_gray48(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise DataError(f"{path}: not a readable image")
    if img.shape != (FACE_SIZE, FACE_SIZE):
        img = cv2.resize(img, (FACE_SIZE, FACE_SIZE), interpolation=cv2.INTER_AREA)
    return img


def _load_class_tree(root: Path, aliases: dict[str, str], label_names: tuple[str, ...],
                     split: str, sink: dict) -> None:
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        label = aliases.get(class_dir.name.lower())
        if label is None:
            raise DataError(f"{class_dir}: unknown class folder; expected one of {', '.join(sorted(aliases))}")
        if label not in label_names:
            continue
        for f in sorted(class_dir.iterdir()):
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                sink["images"].append(_read_gray48(f))
            except DataError as exc:
                sink["errors"].append(str(exc))
                continue
            sink["labels"].append(label_names.index(label))
            sink["usage"].append(split)
            sink["names"].append(str(f.relative_to(root.parent)))


def load_image_folder(root: str | Path, label_names: tuple[str, ...] = FER_EMOTIONS,
                      aliases: dict[str, str] = FOLDER_ALIASES) -> FaceData:
    """Read ``root/<split>/<class>/*`` (or ``root/<class>/*``) into FaceData.

    Unreadable images are skipped and listed in one error only if nothing loads;
    otherwise their names go to ``FaceData.source`` warnings via the returned
    ``skipped`` attribute.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    sink: dict = {"images": [], "labels": [], "usage": [], "names": [], "errors": []}
    subdirs = [p for p in root.iterdir() if p.is_dir()]
    split_dirs = [p for p in subdirs if p.name.lower() in SPLIT_FOLDERS]
    if split_dirs:
        for d in sorted(split_dirs):
            _load_class_tree(d, aliases, label_names, SPLIT_FOLDERS[d.name.lower()], sink)
    else:
        _load_class_tree(root, aliases, label_names, "Training", sink)
    if not sink["images"]:
        detail = f" ({len(sink['errors'])} unreadable)" if sink["errors"] else ""
        raise DataError(f"{root}: no images found in class folders{detail}")
    data = FaceData(
        images=np.stack(sink["images"]),
        labels=np.asarray(sink["labels"], dtype=np.int64),
        label_names=label_names,
        usage=np.asarray(sink["usage"]),
        source=str(root),
        names=sink["names"],
    )
    data.skipped = sink["errors"]  # type: ignore[attr-defined]
    return data


CKPLUS_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "contempt")


def load_ckplus(root: str | Path) -> FaceData:
    """Read the CK+48 folder layout (class folders directly under ``root``)."""
    return load_image_folder(root, label_names=CKPLUS_LABELS, aliases=CKPLUS_FOLDERS)
