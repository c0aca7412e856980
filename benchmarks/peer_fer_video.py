"""Peer benchmark for video: `fer`'s FER.detect_emotions on every frame of a video.

Standalone: runs under the fer virtual environment's python (see peer_fer.py for
how it is installed) and never imports moodlens. Prints ONE JSON object on stdout;
everything else goes to stderr. benchmarks/video_benchmark.py starts it.

    /work/fervenv/bin/python benchmarks/peer_fer_video.py --video a.mp4 --video b.mp4 --threads 1

Timed per video (wall clock and CPU time of this process, the fastest of
--repeat passes each), after one untimed warm-up call: decode with OpenCV +
FER(mtcnn=False).detect_emotions(frame) (fer's Haar cascade + its classifier),
which is how fer's own examples process video frames. fer draws and writes
nothing here, so it is timed doing less than moodlens (which also annotates
and writes an MP4 and a timeline).
"""

import argparse
import json
import os
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", action="append", required=True, help="video file (repeatable)")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for TF and OpenCV")
    p.add_argument("--frames", type=int, default=0, help="time at most this many frames per video (0 = all)")
    p.add_argument("--repeat", type=int, default=1, help="time each video this many times, keep the fastest")
    p.add_argument("--backend", choices=("default", "keras", "tflite"), default="default",
                   help="fer's classifier: its default (tflite in fer 25.x), keras or tflite")
    return p.parse_args()


def main():
    args = parse_args()
    n = str(args.threads)
    # Thread limits must be in place before TensorFlow is imported.
    os.environ.update(TF_NUM_INTRAOP_THREADS=n, TF_NUM_INTEROP_THREADS=n, OMP_NUM_THREADS=n)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    json_out = os.fdopen(os.dup(1), "w")  # native libraries may print to fd 1
    os.dup2(2, 1)

    import cv2
    import tensorflow as tf
    import fer
    from fer.fer import FER

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    cv2.setNumThreads(args.threads)
    kwargs = {} if args.backend == "default" else {"use_tflite": args.backend == "tflite"}
    if args.backend in ("default", "tflite"):
        # fer builds its TFLite interpreter without num_threads; seed its cache with one that
        # honours the thread limit (same bundled file), as peer_fer.py does.
        from pathlib import Path

        model = Path(fer.__file__).parent / "data" / "emotion_model_quantized.tflite"
        if model.is_file() and hasattr(FER, "_tflite_interpreter_cache"):
            interp = tf.lite.Interpreter(model_path=str(model), num_threads=args.threads)
            interp.allocate_tensors()
            FER._tflite_interpreter_cache = interp
    detector = FER(mtcnn=False, **kwargs)

    results = {}
    for video in args.video:
        cap = cv2.VideoCapture(video)
        ok, frame = cap.read()
        if not ok:
            raise SystemExit(f"{video}: cannot read")
        size = [frame.shape[1], frame.shape[0]]
        detector.detect_emotions(frame)  # warm-up: graph building, first allocations
        cap.release()
        best = best_cpu = None
        for _ in range(args.repeat):  # best of N: the machine may be busy with other work
            cap = cv2.VideoCapture(video)
            frames = faces = 0
            c0 = time.process_time()
            t0 = time.perf_counter()
            while not args.frames or frames < args.frames:
                ok, frame = cap.read()
                if not ok:
                    break
                faces += len(detector.detect_emotions(frame))
                frames += 1
            seconds = time.perf_counter() - t0
            cpu = time.process_time() - c0
            cap.release()
            best = seconds if best is None else min(best, seconds)
            best_cpu = cpu if best_cpu is None else min(best_cpu, cpu)
        seconds = best
        results[video] = {"frames": frames, "seconds": round(seconds, 3), "fps": round(frames / seconds, 3),
                          "cpu_ms_per_frame": round(1000 * best_cpu / frames, 2),
                          "faces_per_frame": round(faces / max(1, frames), 3),
                          "size": size}
        print(f"fer: {video}: {results[video]['fps']} frames/s", file=sys.stderr)
    json_out.write(json.dumps({"fer_version": fer.__version__, "tensorflow_version": tf.__version__,
                               "backend": args.backend, "threads": args.threads, "videos": results}) + "\n")
    json_out.flush()


if __name__ == "__main__":
    main()
