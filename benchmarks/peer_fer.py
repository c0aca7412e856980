"""Peer benchmark: the PyPI package `fer` (mini-Xception + OpenCV Haar cascade).

Standalone: it runs under the fer virtual environment's python and never imports
moodlens. It prints ONE JSON object on stdout; everything else goes to stderr.

    /work/fervenv/bin/python benchmarks/peer_fer.py \
        --fer-csv ../shared/data/fer2013/fer2013.csv.gz --media ../shared/data/media --threads 1

Measured with fer's own model, preprocessing and code paths:
  publictest_accuracy  fer's classifier on the 3589 PublicTest 48x48 crops. Each crop gets the
                       treatment fer gives a face crop just before its classifier (cv2.resize to
                       the model's 64x64 input, x/255, then (x-0.5)*2) and goes in batches through
                       FER._classify_emotions. fer's label order (FER._get_labels) is
                       0 angry .. 6 neutral, the FER-2013 codes, so no remapping is needed.
  publictest_accuracy_box_path  the same crops through detect_emotions(crop, face_rectangles=
                       [(0, 0, 48, 48)]): fer's full box path (40 px mean-grey pad, 10 px offsets).
  ms_per_face          median over 300 batch-1 calls of FER._classify_emotions (after warm-up).
  photos_per_s         detect_emotions end to end (Haar cascade + crops + classifier) on the three
                       group photos, images already decoded, 5 timed rounds after one warm-up.

--backend keras (default) uses fer/data/emotion_model.hdf5 (FER(use_tflite=False));
--backend tflite uses fer's quantized emotion_model_quantized.tflite, which is what
FER() picks by default in fer 25.x.

How to install the peer (no torch / facenet-pytorch / moviepy: the non-MTCNN path does not
import them; fer 25.x's `fer/__init__.py` does not re-export FER, hence `from fer.fer import FER`):

    python3 -m venv /work/fervenv
    /work/fervenv/bin/pip install --upgrade pip
    /work/fervenv/bin/pip install --no-deps fer==25.10.3
    /work/fervenv/bin/pip install tensorflow-cpu==2.21.0 "opencv-python-headless<5" \
        Pillow requests "setuptools<81"      # setuptools: fer imports pkg_resources
"""

import argparse
import gzip
import json
import os
import statistics
import sys
import time
from pathlib import Path

PHOTOS = ("2007_007763.jpg", "2008_007676.jpg", "2008_002506.jpg")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fer-csv", required=True, type=Path, help="FER-2013 CSV (.gz ok)")
    p.add_argument("--media", required=True, type=Path, help="folder with the group photos")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for TF and OpenCV")
    p.add_argument("--backend", choices=("keras", "tflite"), default="keras")
    p.add_argument("--batch", type=int, default=256, help="batch size for the accuracy pass")
    return p.parse_args()


def load_publictest(path):
    """(labels, uint8 crops N x 48 x 48) for the PublicTest rows."""
    import numpy as np  # imported late, after the thread limits are set
    labels, crops = [], []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        next(fh)  # header: emotion,pixels,Usage
        for line in fh:
            emotion, pixels, usage = line.rstrip("\n").split(",")
            if usage == "PublicTest":
                labels.append(int(emotion))
                crops.append(np.array(pixels.split(), dtype=np.uint8).reshape(48, 48))
    return np.array(labels), np.stack(crops)


def main():
    args = parse_args()
    n = str(args.threads)
    # Thread limits must be in place before TensorFlow is imported.
    os.environ.update(TF_NUM_INTRAOP_THREADS=n, TF_NUM_INTEROP_THREADS=n, OMP_NUM_THREADS=n)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Native libraries (TFLite, absl) may write to fd 1: point it at stderr, keep the real stdout.
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)

    import cv2
    import numpy as np
    import tensorflow as tf
    import fer
    from fer.fer import FER

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if args.backend == "tflite":
        # fer builds its interpreter without num_threads; seed its class-level cache with one
        # built from the same bundled file, so the thread limit also applies there.
        model = Path(fer.__file__).parent / "data" / "emotion_model_quantized.tflite"
        interp = tf.lite.Interpreter(model_path=str(model), num_threads=args.threads)
        interp.allocate_tensors()
        FER._tflite_interpreter_cache = interp
    t_start = time.perf_counter()
    detector = FER(mtcnn=False, use_tflite=args.backend == "tflite")
    size = tuple(detector._FER__emotion_target_size)  # (64, 64) for the bundled models
    labels_by_index = detector._get_labels()
    assert [labels_by_index[i] for i in range(7)] == [
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"], labels_by_index

    def prepare(crops):
        """fer's face-crop preprocessing: resize to the model input, scale to [-1, 1]."""
        faces = np.stack([cv2.resize(c, size) for c in crops]).astype("float32")
        return (faces / 255.0 - 0.5) * 2.0

    def classify(faces):
        return np.asarray(detector._classify_emotions(faces))

    # a) accuracy on PublicTest, batched through fer's classifier
    print("reading PublicTest rows ...", file=sys.stderr)
    y, crops = load_publictest(args.fer_csv)
    faces = prepare(crops)
    pred = np.concatenate([classify(faces[i:i + args.batch]).argmax(1)
                           for i in range(0, len(faces), args.batch)])
    accuracy = float((pred == y).mean())
    print(f"accuracy {accuracy:.4f} on {len(y)} crops; box path ...", file=sys.stderr)
    box_pred = []
    for crop in crops:
        found = detector.detect_emotions(cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR),
                                         face_rectangles=[(0, 0, 48, 48)])
        scores = found[0]["emotions"]
        box_pred.append(max(range(7), key=lambda k: scores[labels_by_index[k]]))
    box_accuracy = float((np.array(box_pred) == y).mean())

    # b) classification latency at batch size 1
    one = faces[:1]
    for _ in range(20):
        classify(one)
    latencies = []
    for i in range(300):
        face = faces[i:i + 1]
        t0 = time.perf_counter()
        classify(face)
        latencies.append((time.perf_counter() - t0) * 1000.0)

    # c) detect_emotions end to end on the group photos (decoded once, outside the timing)
    images = {name: cv2.imread(str(args.media / name)) for name in PHOTOS}
    missing = [name for name, img in images.items() if img is None]
    if missing:
        raise SystemExit(f"cannot read {missing} in {args.media}")
    counts = {name: len(detector.detect_emotions(img)) for name, img in images.items()}  # warm-up
    rounds = 5
    t0 = time.perf_counter()
    for _ in range(rounds):
        for img in images.values():
            detector.detect_emotions(img)
    photos_per_s = rounds * len(images) / (time.perf_counter() - t0)

    result = {
        "fer_version": fer.__version__,
        "tensorflow_version": tf.__version__,
        "backend": args.backend,
        "publictest_accuracy": round(accuracy, 4),
        "publictest_accuracy_box_path": round(box_accuracy, 4),
        "n": int(len(y)),
        "ms_per_face": round(statistics.median(latencies), 3),
        "photos_per_s": round(photos_per_s, 2),
        "faces_per_photo": counts,
        "threads": args.threads,
        "elapsed_s": round(time.perf_counter() - t_start, 1),
    }
    json_out.write(json.dumps(result) + "\n")
    json_out.flush()


if __name__ == "__main__":
    main()
