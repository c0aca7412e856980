"""Choose Haar parameters on the annotated group photos (face_boxes.csv).

Counts, for each setting, annotated faces found (IoU >= 0.4), extra boxes on
the annotated photos, false faces on dogs.jpg (no people), and time per photo.
The setting with the best F1, counting dog hits as false faces too, becomes
HaarDetector's default.

    python benchmarks/detector_params.py
"""

from __future__ import annotations

import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cv2  # noqa: E402

from common import MEDIA, annotated_boxes, match, table  # noqa: E402
from moodlens.face.detect import HaarDetector  # noqa: E402
from moodlens.images import read_image  # noqa: E402


def main() -> None:
    cv2.setNumThreads(1)
    truth = annotated_boxes()
    images = {name: read_image(MEDIA / name) for name in truth}
    dogs = read_image(MEDIA / "dogs.jpg")
    n_true = sum(len(b) for b in truth.values())
    rows = []
    for sf, mn, ms in itertools.product([1.05, 1.1, 1.15, 1.2], [3, 4, 5, 6], [20, 24, 30]):
        det = HaarDetector(scale_factor=sf, min_neighbors=mn, min_size=ms)
        hits = extra = 0
        t0 = time.perf_counter()
        for name, image in images.items():
            found = [b for b, _ in det.detect(image)]
            h = match(found, truth[name])
            hits += h
            extra += len(found) - h
        ms_per_photo = (time.perf_counter() - t0) / len(images) * 1000
        dog_hits = len(det.detect(dogs))
        precision = hits / max(1, hits + extra + dog_hits)
        recall = hits / n_true
        f1 = 2 * precision * recall / max(1e-9, precision + recall)
        rows.append({"scaleFactor": sf, "minNeighbors": mn, "minSize": ms, "found": f"{hits}/{n_true}",
                     "extra": extra, "dogs": dog_hits, "F1": f"{f1:.3f}", "ms/photo": f"{ms_per_photo:.0f}",
                     "_key": (round(f1, 6), -ms_per_photo)})
    rows.sort(key=lambda r: r["_key"], reverse=True)
    print(table(rows[:15], ["scaleFactor", "minNeighbors", "minSize", "found", "extra", "dogs", "F1", "ms/photo"]))
    best = rows[0]
    print(f"\nbest: scaleFactor={best['scaleFactor']} minNeighbors={best['minNeighbors']} minSize={best['minSize']}")


if __name__ == "__main__":
    main()
