"""How FER-2013 crops frame a face, relative to a detector's box.

Runs a detector (Haar or BlazeFace) on FER-2013 training faces (upscaled x4 and padded by
replicating edges, so the crop border is not a hard edge) and measures the FER
crop's side and centre relative to the detected box. The medians set
moodlens.face.recognizer.CROP_GEOMETRY for that detector, so that photos are
cropped the way the model saw faces in training. For BlazeFace it also reports
the eye-line angle, which says how level FER-2013's faces are.

    python benchmarks/crop_geometry.py [--detector blazeface|haar]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from common import FER_CSV, require_shared  # noqa: E402
from moodlens.data import load_fer2013  # noqa: E402
from moodlens.face.detect import HaarDetector, make_detector  # noqa: E402

UP, PAD, SAMPLE = 4, 96, 800  # upscale factor, padding (px after upscaling), faces measured


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--detector", default="haar", help="haar (the cascade at min size 60) or a detector spec")
    args = p.parse_args()
    data = load_fer2013(require_shared(FER_CSV), usage="Training")
    rng = np.random.default_rng(0)
    det = HaarDetector(min_neighbors=5, min_size=60) if args.detector == "haar" else make_detector(args.detector)
    scales, shifts_x, shifts_y, angles = [], [], [], []
    for i in rng.choice(len(data), SAMPLE, replace=False):
        img = cv2.resize(data.images[i], None, fx=UP, fy=UP, interpolation=cv2.INTER_CUBIC)
        img = cv2.copyMakeBorder(img, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
        found = det.detect(img)
        if len(found) != 1:
            continue
        b = found[0].box
        angles.append(found[0].eye_angle())
        side = 48 * UP
        centre = PAD + side / 2
        scales.append(side / b.w)
        shifts_x.append((centre - (b.x + b.w / 2)) / b.w)
        shifts_y.append((centre - (b.y + b.h / 2)) / b.h)
    print(f"faces with exactly one {args.detector} box: {len(scales)}/{SAMPLE}")
    for name, values in (("crop side / box side", scales), ("centre shift x / box", shifts_x),
                         ("centre shift y / box", shifts_y), ("|eye angle| (deg)", np.abs(angles))):
        q = np.percentile(values, [25, 50, 75])
        print(f"{name:>22}: median {q[1]:.3f} (quartiles {q[0]:.3f} .. {q[2]:.3f})")


if __name__ == "__main__":
    main()
