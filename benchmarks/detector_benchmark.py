"""Face detectors side by side: faces found, false faces, and time, one thread.

    python benchmarks/detector_benchmark.py

For each detector: annotated faces found in the shared group photos
(face_boxes.csv, 17 faces, IoU >= 0.4), boxes that match no annotated face,
false faces on dogs.jpg (no people), faces found on the single portraits and
on every 5th frame of the shared face video (one person throughout), and the
median time per photo and per 640x480 frame (BlazeFace: the photo path with
tiles and the one-pass video path).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cv2  # noqa: E402
import numpy as np  # noqa: E402

from common import MEDIA, annotated_boxes, match, median_ms, table  # noqa: E402
from moodlens.face.detect import make_detector  # noqa: E402
from moodlens.images import read_image  # noqa: E402

FACE_VIDEO = MEDIA / "mixkit-girl-smiling-portrait-in-the-library-4756-hd-ready.mp4"
PORTRAITS = ["obama_small.jpg", "obama_partial_face.jpg", "two_people.jpg"]  # 1, 1, 2 faces


def video_frames(step: int = 5) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(FACE_VIDEO))
    frames, i = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(frame)
        i += 1
    return frames


def main() -> None:
    cv2.setNumThreads(1)
    truth = annotated_boxes()
    photos = {name: read_image(MEDIA / name) for name in truth}
    dogs = read_image(MEDIA / "dogs.jpg")
    portraits = {name: read_image(MEDIA / name) for name in PORTRAITS}
    frames = video_frames()
    vga = cv2.resize(frames[len(frames) // 2], (640, 480), interpolation=cv2.INTER_AREA)
    n_true = sum(map(len, truth.values()))
    rows = []
    for label, spec, method in [("blazeface (photo path: whole image + tiles)", "blazeface", "detect"),
                                ("blazeface (video path: one pass)", "blazeface", "detect_frame"),
                                ("blazeface:short (photo path)", "blazeface:short", "detect"),
                                ("blazeface:short (video path)", "blazeface:short", "detect_frame"),
                                ("haar", "haar", "detect")]:
        try:
            det = make_detector(spec)
        except Exception as exc:  # Haar on OpenCV 5 without contrib
            rows.append({"detector": label, "found": f"unavailable: {exc}"})
            continue
        run = getattr(det, method)
        hits = extra = 0
        for name, image in photos.items():
            found = [d.box for d in run(image)]
            h = match(found, truth[name])
            hits, extra = hits + h, extra + len(found) - h
        ms_photo = np.median([median_ms(lambda im=im: run(im), 10, 2) for im in photos.values()])
        rows.append({
            "detector": label,
            "found": f"{hits}/{n_true}",
            "extra boxes": extra,
            "dogs": len(run(dogs)),
            "portraits (1/1/2)": "/".join(str(len(run(im))) for im in portraits.values()),
            "video frames with 1 face": f"{sum(len(run(f)) == 1 for f in frames)}/{len(frames)}",
            "ms/photo": f"{ms_photo:.1f}",
            "ms/640x480 frame": f"{median_ms(lambda: run(vga), 30, 3):.1f}",
        })
    print(table(rows))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"\n({time.perf_counter() - t0:.0f} s)")
