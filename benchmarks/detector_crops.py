"""Do the new detector's crops (and eye alignment) keep the classifier's accuracy?

FER-2013 PublicTest faces are upscaled, tilted by a known angle and pasted
into a real photo (dogs.jpg, which has no people) at a random place and size;
each detector then has to find the face in the photo, and the bundled
classifier labels the crop the recogniser cuts from the detection. Reported
per tilt: faces found, accuracy on the faces found, and accuracy on the faces
both detectors found (the like-for-like comparison). BlazeFace runs with
alignment off, with the shipped setting (level faces tilted by >= 10 degrees),
and aligning every face.

    python benchmarks/detector_crops.py [--faces 600] [--angles 0 15 30] [--usage PublicTest]

Settings (whether and when to align) are chosen with --usage Training, faces
the classifier was trained on but that say which crop suits it, so that the
PublicTest figures stay a test.

The accuracy of the clean 48x48 crops themselves (no detector) is printed
first as the ceiling.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from common import FER_CSV, MEDIA, iou, require_shared, table  # noqa: E402
from moodlens.data import load_fer2013  # noqa: E402
from moodlens.face.recognizer import FaceRecognizer  # noqa: E402
from moodlens.images import read_image  # noqa: E402
from moodlens.results import Box  # noqa: E402


def paste(face: np.ndarray, background: np.ndarray, angle: float, rng) -> tuple[np.ndarray, Box]:
    """The face (gray 48x48) at 2-4x, tilted by ``angle`` degrees (clockwise,
    as a head leaning to its left shoulder), inside a copy of ``background``;
    and the box of the upright face square around its centre."""
    side = int(rng.integers(96, 193))
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    pad = side // 2  # smooth surroundings, so no square edge frames the face
    padded = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    c = padded.shape[0] / 2
    rotated = cv2.warpAffine(padded, cv2.getRotationMatrix2D((c, c), -angle, 1.0), padded.shape[::-1],
                             flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # Feather the patch into the photo with a round mask.
    n = rotated.shape[0]
    yy, xx = np.mgrid[:n, :n]
    mask = np.clip((0.5 * n - np.hypot(xx - c, yy - c)) / (0.15 * n), 0, 1)[..., None]
    photo = background.copy()
    H, W = photo.shape[:2]
    x0, y0 = int(rng.integers(0, W - n)), int(rng.integers(0, H - n))
    region = photo[y0:y0 + n, x0:x0 + n].astype(np.float32)
    patch = cv2.cvtColor(rotated, cv2.COLOR_GRAY2BGR).astype(np.float32)
    photo[y0:y0 + n, x0:x0 + n] = (mask * patch + (1 - mask) * region).astype(np.uint8)
    return photo, Box(x0 + pad, y0 + pad, side, side)


def classify_found(rec: FaceRecognizer, photo: np.ndarray, truth: Box) -> int | None:
    """Label index of the detection that overlaps the pasted face, or None if missed."""
    faces = [f for f in rec.predict(photo) if iou(f.box, truth) >= 0.3]
    if not faces:
        return None
    best = max(faces, key=lambda f: iou(f.box, truth))
    return rec.labels.index(best.label)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--faces", type=int, default=600, help="faces sampled (default: %(default)s)")
    p.add_argument("--angles", type=float, nargs="+", default=[0, 15, 30], help="tilts in degrees")
    p.add_argument("--usage", default="PublicTest", choices=["Training", "PublicTest"], help="FER-2013 split")
    args = p.parse_args()
    cv2.setNumThreads(1)
    data = load_fer2013(require_shared(FER_CSV), usage=args.usage)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(data), min(args.faces, len(data)), replace=False)
    background = cv2.resize(read_image(MEDIA / "dogs.jpg"), (640, 480), interpolation=cv2.INTER_AREA)

    variants = {
        "haar": FaceRecognizer(detector="haar"),
        "blazeface, no alignment": FaceRecognizer(align=False),
        "blazeface (shipped: align >= 10 deg)": FaceRecognizer(),
    }
    align_all = FaceRecognizer()
    align_all.align_min_degrees = 0.0
    variants["blazeface, align every face"] = align_all

    ceiling = variants["haar"].classify([data.images[i] for i in idx]).argmax(1)
    truth_labels = data.labels[idx]
    print(f"{len(idx)} {args.usage} faces; the 48x48 crops alone: accuracy {np.mean(ceiling == truth_labels):.3f}\n")

    rows = []
    for angle in args.angles:
        photos = []
        for k, i in enumerate(idx):
            photos.append(paste(data.images[i], background, angle if k % 2 else -angle, np.random.default_rng(k)))
        preds = {}
        for name, rec in variants.items():
            preds[name] = [classify_found(rec, photo, box) for photo, box in photos]
        both = [k for k in range(len(idx)) if preds["haar"][k] is not None
                and preds["blazeface (shipped: align >= 10 deg)"][k] is not None]
        for name, pr in preds.items():
            found = [k for k in range(len(idx)) if pr[k] is not None]
            rows.append({
                "tilt": f"{angle:g}",
                "detector": name,
                "found": f"{len(found)}/{len(idx)}",
                "acc (found)": f"{np.mean([pr[k] == truth_labels[k] for k in found]):.3f}" if found else "-",
                "acc (found by both)": f"{np.mean([pr[k] == truth_labels[k] for k in both]):.3f}" if both else "-",
                "both": len(both),
            })
    print(table(rows))


if __name__ == "__main__":
    main()
