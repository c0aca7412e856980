"""``moodlens prepare fer2013``: class-folder PNGs plus a compact .npz cache."""

from __future__ import annotations

from pathlib import Path

import cv2

from .fer2013 import load_fer2013


def prepare_fer2013(source: str | Path, out_dir: str | Path, write_png: bool = True) -> dict[str, dict[str, int]]:
    """Write ``out_dir/<Usage>/<class>/<row>.png`` and ``out_dir/fer2013.npz``.

    Returns per-split class counts. PNGs are lossless, so a model trained on the
    folders sees the CSV's exact pixels.
    """
    data = load_fer2013(source)
    out_dir = Path(out_dir)
    counts: dict[str, dict[str, int]] = {}
    for row, (image, label, usage) in enumerate(zip(data.images, data.labels, data.usage)):
        name = data.label_names[label]
        split = counts.setdefault(str(usage), {n: 0 for n in data.label_names})
        split[name] += 1
        if write_png:
            folder = out_dir / str(usage) / name
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{row:05d}.png"), image)
    data.save_npz(out_dir / "fer2013.npz")
    return counts
