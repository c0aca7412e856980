"""Video speed, end to end: frames per second of decode + detect + track +
classify + annotate + write (MP4 and timeline), on the shared face video at its
native size and at 640x480, on one and two threads, for several settings; and
the same videos through `fer` (FER.detect_emotions per frame) in its own
interpreter, quoted as a ratio. Each figure is the fastest of --repeat passes,
so other work on the machine disturbs the comparison less.

    python benchmarks/video_benchmark.py [--model PATH] [--fer-python /work/fervenv/bin/python]

The 640x480 clip is made here: the middle 4:3 of each frame, resized, written
with OpenCV (mp4v); fer reads the same file. "label changes" counts how often
the shown label of a track switches, per 10 s of track time: the flicker a
viewer sees. fer draws and writes nothing, so it is timed doing less.

"frames/s" is wall clock; "CPU ms/frame" is the process's CPU time (all its
threads) per frame, which other work on a busy machine disturbs much less:
"x fer (CPU)" compares cost, "x fer" compares speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import cv2  # noqa: E402
from common import MEDIA, require_shared, table  # noqa: E402

from moodlens.cli_video import LIVE_DETECTOR  # noqa: E402
from moodlens.errors import MoodlensError  # noqa: E402
from moodlens.face.recognizer import FaceRecognizer  # noqa: E402
from moodlens.video import OutputPaths, VideoFileSource, VideoOptions, VideoProcessor  # noqa: E402
from moodlens.video.outputs import have_pyav  # noqa: E402

FACE_VIDEO = MEDIA / "mixkit-girl-smiling-portrait-in-the-library-4756-hd-ready.mp4"
HERE = Path(__file__).resolve().parent
FER_PYTHON = Path("/work/fervenv/bin/python")

SETTINGS = {  # name -> (detector, options), at the default detection width
    "defaults: blazeface, every frame": ("blazeface", VideoOptions()),
    f"live defaults: {LIVE_DETECTOR}, every frame": (LIVE_DETECTOR, VideoOptions.live()),
    "live, smoothing off": (LIVE_DETECTOR, VideoOptions.live(smooth="off")),
    "haar, every frame": ("haar", VideoOptions(every=1)),
    "haar, every 3rd (the old file defaults)": ("haar", VideoOptions()),
    "haar, every 8th (the old live defaults)": ("haar", VideoOptions.live()),
}


def rewrite(src: Path, dst: Path, max_frames: int, to_640x480: bool) -> Path:
    """The first ``max_frames`` frames of ``src`` (0 = all) as an mp4v file,
    optionally the middle 4:3 of each frame resized to 640x480."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25
    size = (640, 480) if to_640x480 else (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    n = 0
    while not max_frames or n < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        if to_640x480:
            h, w = frame.shape[:2]
            cw = min(w, h * 4 // 3)
            x0 = (w - cw) // 2
            frame = cv2.resize(frame[:, x0:x0 + cw], size, interpolation=cv2.INTER_AREA)
        writer.write(frame)
        n += 1
    writer.release()
    return dst


def run_ours(video: Path, model: str, detector: str, threads: int, options: VideoOptions, out_dir: Path,
             repeat: int) -> dict:
    cv2.setNumThreads(threads)
    rec = FaceRecognizer(model=model, detector=detector, threads=threads)
    proc = VideoProcessor(rec, dataclasses.replace(options, threads=threads, plot=False))
    with VideoFileSource(video) as warm:  # first ONNX Runtime call and cascade load, untimed
        proc.step(next(iter(warm)))
    shown: dict[int, list[str]] = {}

    def collect(frame, annotated, faces):
        for f in faces:
            shown.setdefault(f.track, []).append(f.label)

    seconds = cpu = None
    for _ in range(repeat):  # best of N: the machine may be busy with other work
        shown.clear()
        c0, t0 = time.process_time(), time.perf_counter()
        with VideoFileSource(video) as source:
            summary = proc.process(source, OutputPaths.for_stem(out_dir, "bench"), on_frame=collect)
        took, took_cpu = time.perf_counter() - t0, time.process_time() - c0
        seconds = took if seconds is None else min(seconds, took)
        cpu = took_cpu if cpu is None else min(cpu, took_cpu)
    changes = sum(sum(a != b for a, b in zip(ls, ls[1:])) for ls in shown.values())
    track_seconds = sum(len(ls) for ls in shown.values()) / summary["fps"]
    return {"fps": summary["frames"] / seconds, "cpu_ms": 1000 * cpu / summary["frames"],
            "frames": summary["frames"], "tracks": len(summary["tracks"]),
            "changes_per_10s": 10 * changes / track_seconds if track_seconds else 0.0,
            "every": proc._every}


def run_fer(python: Path, videos: list[Path], threads: int, max_frames: int, repeat: int) -> dict:
    cmd = [str(python), str(HERE / "peer_fer_video.py"), "--threads", str(threads), "--frames", str(max_frames),
           "--repeat", str(repeat)]
    for v in videos:
        cmd += ["--video", str(v)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        print(f"fer run failed:\n{done.stderr[-2000:]}", file=sys.stderr)
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="moodlens face model name or .onnx path")
    p.add_argument("--video", type=Path, default=FACE_VIDEO, help="face video (default: the shared one)")
    p.add_argument("--frames", type=int, default=0, help="use only the first N frames (0 = all)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts to measure")
    p.add_argument("--repeat", type=int, default=3, help="passes per measurement; the fastest counts (default: 3)")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--fer-python", type=Path, default=FER_PYTHON, help="interpreter with fer installed")
    p.add_argument("--no-fer", action="store_true", help="skip the fer comparison")
    args = p.parse_args()

    require_shared(args.video)
    tmp = Path(tempfile.mkdtemp(prefix="moodlens-video-bench-"))
    # the native video is used as it is (H.264) unless only its first frames are wanted
    videos = {"native": rewrite(args.video, tmp / "native.mp4", args.frames, False) if args.frames else args.video,
              "640x480": rewrite(args.video, tmp / "face_640x480.mp4", args.frames, True)}
    sizes = {}
    for key, path in videos.items():
        cap = cv2.VideoCapture(str(path))
        sizes[key] = f"{int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
        cap.release()

    fer = {}
    if not args.no_fer:
        if args.fer_python.is_file():
            for threads in args.threads:
                res = run_fer(args.fer_python, list(videos.values()), threads, args.frames, args.repeat)
                for key, path in videos.items():
                    if res and str(path) in res["videos"]:
                        fer[key, threads] = res["videos"][str(path)]
                        fer["version"] = f"fer {res['fer_version']} (TensorFlow {res['tensorflow_version']}, " \
                                         f"{res['backend']} classifier)"
        else:
            print(f"fer not measured: {args.fer_python} not found (see benchmarks/peer_fer.py)", file=sys.stderr)

    rows = []
    for key, path in videos.items():
        for threads in args.threads:
            for name in args.settings:
                if name == "live, smoothing off" and threads != args.threads[0]:
                    continue  # the flicker comparison needs one thread count only
                detector, o = SETTINGS[name]
                try:
                    r = run_ours(path, args.model, detector, threads, o, tmp, args.repeat)
                except MoodlensError as exc:  # Haar on OpenCV 5 without contrib
                    print(f"{name}: {exc}", file=sys.stderr)
                    continue
                theirs = fer.get((key, threads))
                rows.append({
                    "video": sizes[key], "threads": threads, "setting": name,
                    "detect": f"every {r['every']}, {o.detection_width(int(sizes[key].split('x')[0]))} px wide",
                    "frames/s": f"{r['fps']:.1f}", "CPU ms/frame": f"{r['cpu_ms']:.1f}",
                    "fer frames/s": f"{theirs['fps']:.1f}" if theirs else "-",
                    "fer CPU ms/frame": f"{theirs['cpu_ms_per_frame']:.1f}" if theirs else "-",
                    "x fer": f"{r['fps'] / theirs['fps']:.1f}x" if theirs else "-",
                    "x fer (CPU)": f"{theirs['cpu_ms_per_frame'] / r['cpu_ms']:.1f}x" if theirs else "-",
                    "tracks": r["tracks"], "label changes /10 s": f"{r['changes_per_10s']:.1f}",
                })
                print(f"{sizes[key]} {threads} thread(s) {name}: {r['fps']:.1f} frames/s", file=sys.stderr)

    print(f"## moodlens video, end to end: {sizes['native']} and 640x480\n")
    print(f"model {args.model}; codec {'h264 (PyAV)' if have_pyav() else 'mp4v (OpenCV)'}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end; "
          f"frames per video: {args.frames or 'all'}; fastest of {args.repeat} passes")
    if fer:
        print(f"peer: {fer['version']}, FER(mtcnn=False).detect_emotions per decoded frame\n")
    else:
        print("peer: fer not measured\n")
    print(table(rows))


if __name__ == "__main__":
    main()
