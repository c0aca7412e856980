"""Accuracy and speed of the bundled face model, next to fer's when installed.

    python benchmarks/face_benchmark.py                       # moodlens only
    python benchmarks/face_benchmark.py --fer-python /work/fervenv/bin/python

Prints Markdown tables:
1. accuracy on FER-2013 PublicTest (3,589 crops), plain and with flip TTA,
   per-class precision / recall / F1;
2. speed on one core: ms per face (batch 1, median), faces/s (batch 64), and
   photos/s end to end (detect, crop, classify; photos decoded beforehand, as
   in peer_fer.py) on the shared group photos, with the default BlazeFace
   detector and with Haar.
fer (the PyPI package, mini-Xception) is measured in the same run by
benchmarks/peer_fer.py under its own interpreter (it needs TensorFlow), and
every ratio is quoted as moodlens / fer.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cv2  # noqa: E402

from common import FER_CSV, MEDIA, median_ms, require_shared, table  # noqa: E402
from moodlens.data import load_fer2013  # noqa: E402
from moodlens.errors import MoodlensError  # noqa: E402
from moodlens.face.evaluation import evaluate_face  # noqa: E402
from moodlens.face.recognizer import FaceRecognizer, face_input  # noqa: E402
from moodlens.images import read_image  # noqa: E402
from moodlens.registry import load_model  # noqa: E402

GROUP_PHOTOS = ["2007_007763.jpg", "2008_007676.jpg", "2008_002506.jpg"]


def photos_per_second(rec: FaceRecognizer, photos: dict, rounds: int = 5) -> tuple[float, dict]:
    """Detect + crop + classify on decoded photos: photos/s and faces found per photo."""
    faces = {p: len(rec.predict_array(img)) for p, img in photos.items()}
    t0 = time.perf_counter()
    for _ in range(rounds):
        for img in photos.values():
            rec.predict_array(img)
    return rounds * len(photos) / (time.perf_counter() - t0), faces


def measure_moodlens(model_name: str, threads: int, data) -> dict:
    model = load_model(model_name, "face", threads=threads)
    plain = evaluate_face(model, data)
    tta = evaluate_face(model, data, tta=True)
    one = face_input(data.images[:1])
    batch = face_input(data.images[:64])
    ms_face = median_ms(lambda: model.run(one), 500)
    ms_batch = median_ms(lambda: model.run(batch), 50)
    # decoded once, as peer_fer.py does: both sides time detect + crop + classify
    photos = {p: read_image(MEDIA / p) for p in GROUP_PHOTOS}
    per_detector = {}
    for detector in ("blazeface", "haar"):
        try:
            rec = FaceRecognizer(model=model_name, detector=detector, threads=threads)
        except MoodlensError as exc:  # Haar on OpenCV 5 without contrib
            print(f"{detector}: {exc}", file=sys.stderr)
            continue
        per_detector[detector] = photos_per_second(rec, photos)
    return {"report": plain, "tta_accuracy": tta.accuracy, "ms_per_face": ms_face,
            "faces_per_s_batch64": 64 / (ms_batch / 1000), "photos": per_detector,
            "size_mb": model.path.stat().st_size / 1e6}


def measure_fer(python: str, threads: int, backend: str) -> dict | None:
    cmd = [python, str(Path(__file__).with_name("peer_fer.py")), "--fer-csv", str(FER_CSV),
           "--media", str(MEDIA), "--threads", str(threads), "--backend", backend]
    print(f"running fer: {' '.join(cmd)}", file=sys.stderr)
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        print(f"fer run failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default", help="bundled model name or .onnx path")
    ap.add_argument("--threads", type=int, default=1, help="inference threads for both packages (default 1)")
    ap.add_argument("--fer-python", help="interpreter of an environment with fer installed (see peer_fer.py)")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)

    data = load_fer2013(require_shared(FER_CSV), usage="PublicTest")
    ours = measure_moodlens(args.model, args.threads, data)
    # fer's default model is the quantized TFLite one; its Keras .hdf5 is the original
    peers = {b: measure_fer(args.fer_python, args.threads, b) for b in ("tflite", "keras")} if args.fer_python else {}
    peers = {b: p for b, p in peers.items() if p}
    peer = peers.get("tflite")
    rep = ours["report"]

    print(f"## Accuracy on FER-2013 PublicTest ({rep.n} crops)\n")
    rows = [{"package": f"moodlens ({Path(rep.extra['model']).name}, {ours['size_mb']:.1f} MB)",
             "accuracy": f"{rep.accuracy:.4f}", "with flip TTA": f"{ours['tta_accuracy']:.4f}",
             "macro F1": f"{rep.macro_f1:.4f}"}]
    for backend, p in peers.items():
        rows.append({"package": f"fer {p['fer_version']} (mini-Xception, {backend})",
                     "accuracy": f"{p['publictest_accuracy']:.4f}", "with flip TTA": "", "macro F1": ""})
    print(table(rows))
    print("\nmoodlens per class:\n")
    print(table([{"class": k, "precision": f"{m['precision']:.3f}", "recall": f"{m['recall']:.3f}",
                  "F1": f"{m['f1']:.3f}", "support": m["support"]} for k, m in rep.per_class().items()]))

    print(f"\n## Speed, {args.threads} thread(s)\n")
    rows = [{"package": f"moodlens ({detector} detector)", "ms/face (batch 1)": f"{ours['ms_per_face']:.3f}",
             "faces/s (batch 64)": f"{ours['faces_per_s_batch64']:.0f}",
             "group photos/s (end to end)": f"{per_s:.1f}",
             "faces found": " / ".join(str(faces[p]) for p in GROUP_PHOTOS)}
            for detector, (per_s, faces) in ours["photos"].items()]
    for backend, p in peers.items():
        rows.append({"package": f"fer ({backend})", "ms/face (batch 1)": f"{p['ms_per_face']:.3f}",
                     "faces/s (batch 64)": "",
                     "group photos/s (end to end)": f"{p['photos_per_s']:.1f}",
                     "faces found": " / ".join(str(p["faces_per_photo"].get(x, "?")) for x in GROUP_PHOTOS)})
    print(table(rows))
    if peer:
        print(f"\nratios against fer as shipped (TFLite), moodlens / fer: accuracy {rep.accuracy / peer['publictest_accuracy']:.3f}x, "
              f"classification speed {peer['ms_per_face'] / ours['ms_per_face']:.1f}x, "
              f"photos/s {ours['photos']['blazeface'][0] / peer['photos_per_s']:.1f}x (default detector)")
    else:
        print("\nfer not measured (pass --fer-python, see benchmarks/peer_fer.py)")


if __name__ == "__main__":
    main()
