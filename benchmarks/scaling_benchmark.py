"""Scale-out on this machine: the same work with 1 and 2 workers, local vs Ray, 1 vs 2 DDP ranks.

    python benchmarks/scaling_benchmark.py                 # everything (~5-8 min on 2 cores)
    python benchmarks/scaling_benchmark.py --parts ddp     # images | videos | ddp

1. images: 2,000 FER-2013 PublicTest faces written as 192x192 PNG files (each
   upscaled 4x, so the detector has a face to find); `moodlens face DIR
   --format json` with the local engine (`--jobs 1/2`) and with `--engine ray`
   (a local Ray instance, `--workers 1/2`). Decode + detect + classify + JSON.
2. videos: the shared face video repeated 20 times; `moodlens face DIR
   --save-dir OUT` with `--jobs 1/2` and with `--engine ray --workers 1/2`.
3. ddp: one epoch of 6,000 FER-2013 Training faces with the face recipe's
   network, as 1 process x 1 thread, 1 process x 2 threads and 2 torchrun
   ranks x 1 thread (gloo). Time of the second epoch (the first warms up).

Throughput is files (or images) per second; efficiency is the 2-worker figure
over twice the 1-worker one. Each configuration runs as a fresh process, with
nothing else running (pause other work first); wall time includes start-up
(Ray's ~10 s included: that is what a user waits for).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import FER_CSV, MEDIA, require_shared, table  # noqa: E402
from moodlens.data import load_fer2013  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FACE_VIDEO = "mixkit-girl-smiling-portrait-in-the-library-4756-hd-ready.mp4"


def run(cmd: list[str], env: dict | None = None) -> float:
    """Wall seconds of one command; its failure stops the benchmark."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, cwd=ROOT)
    seconds = time.perf_counter() - t0
    if done.returncode not in (0, 1):  # 1: some inputs failed (face-less files), the rest went through
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return seconds


def write_faces(folder: Path, n: int) -> None:
    data = load_fer2013(require_shared(FER_CSV), usage="PublicTest")
    for i, img in enumerate(data.images[:n]):
        big = cv2.resize(img, (192, 192), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(folder / f"face_{i:05d}.png"), big)


def moodlens(*args: str) -> list[str]:
    return [sys.executable, "-m", "moodlens", *args]


def bench_images(tmp: Path, n: int) -> list[dict]:
    folder = tmp / "images"
    folder.mkdir()
    write_faces(folder, n)
    rows = []
    for engine, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
        extra = ["--engine", "ray", "--workers", str(workers)] if engine == "ray" else ["--jobs", str(workers)]
        seconds = run(moodlens("face", str(folder), "--format", "json", "--threads", "1", *extra),
                      env={"OMP_NUM_THREADS": "1"})
        rows.append({"workload": f"{n} images", "engine": engine, "workers": workers, "seconds": seconds,
                     "per_s": n / seconds})
    return rows


def bench_videos(tmp: Path, copies: int) -> list[dict]:
    folder = tmp / "videos"
    folder.mkdir()
    src = require_shared(MEDIA / FACE_VIDEO)
    for i in range(copies):
        shutil.copy(src, folder / f"clip_{i:02d}{src.suffix}")
    rows = []
    for engine, workers in (("local", 1), ("local", 2), ("ray", 1), ("ray", 2)):
        out = tmp / f"out_{engine}_{workers}"
        extra = ["--engine", "ray", "--workers", str(workers)] if engine == "ray" else ["--jobs", str(workers)]
        cmd = moodlens("face", str(folder), *extra, "--save-dir", str(out), "--no-plot", "--format", "json")
        seconds = run(cmd, env={"OMP_NUM_THREADS": "1"})
        rows.append({"workload": f"{copies} videos", "engine": engine, "workers": workers, "seconds": seconds,
                     "per_s": copies / seconds})
    return rows


def write_training_subset(path: Path, n: int) -> None:
    with gzip.open(require_shared(FER_CSV), "rt") as src, open(path, "w") as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst)
        writer.writerow(next(reader))
        kept = 0
        for row in reader:
            if row[2] == "Training":
                writer.writerow(row)
                kept += 1
                if kept == n:
                    break


def bench_ddp(tmp: Path, n: int) -> list[dict]:
    data = tmp / "train.csv"
    write_training_subset(data, n)
    recipe = ROOT / "configs" / "face_teacher_a.yaml"
    rows = []
    for ranks, threads in ((1, 1), (1, 2), (2, 1)):
        out = tmp / f"ddp_{ranks}x{threads}"
        sets = [f"data.path={data}", f"out_dir={out}", "optim.epochs=2", f"optim.threads={threads}",
                "data.test_usage=[]"]
        launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
                    if ranks > 1 else [sys.executable])
        run([*launcher, "-m", "moodlens", "train", "face", "--config", str(recipe),
             *sum((["--set", s] for s in sets), [])])
        with open(out / "history.csv") as fh:
            seconds = float(list(csv.DictReader(fh))[-1]["seconds"])
        train_rows = round(n * 0.9)
        rows.append({"workload": f"1 epoch, {train_rows} faces", "engine": "torchrun" if ranks > 1 else "one process",
                     "workers": f"{ranks} x {threads} thread{'s' if threads > 1 else ''}", "seconds": seconds,
                     "per_s": train_rows / seconds})
    return rows


def with_efficiency(rows: list[dict]) -> list[dict]:
    """Efficiency of each 2-worker row against the same engine's 1-worker row (1 thread each)."""
    base = {(r["workload"], r["engine"]): r["per_s"] for r in rows if r["workers"] in (1, "1 x 1 thread")}
    single = next((r["per_s"] for r in rows if r["workers"] == "1 x 1 thread"), None)
    out = []
    for r in rows:
        one = single if r["workers"] == "2 x 1 thread" else base.get((r["workload"], r["engine"]))
        two = r["workers"] in (2, "2 x 1 thread")
        out.append({**r, "seconds": f"{r['seconds']:.1f}", "per_s": f"{r['per_s']:.1f}",
                    "efficiency": f"{r['per_s'] / (2 * one):.0%}" if two and one else ""})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", nargs="+", choices=["images", "videos", "ddp"], default=["images", "videos", "ddp"])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--videos", type=int, default=20)
    ap.add_argument("--ddp-faces", type=int, default=6000)
    args = ap.parse_args(argv)
    print(f"{os.cpu_count()} CPU cores; {np.__name__} {np.__version__}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="moodlens-scaling-") as tmp:
        tmp = Path(tmp)
        if "images" in args.parts:
            rows += bench_images(tmp, args.images)
        if "videos" in args.parts:
            rows += bench_videos(tmp, args.videos)
        if "ddp" in args.parts:
            rows += bench_ddp(tmp, args.ddp_faces)
    print(table(with_efficiency(rows), ["workload", "engine", "workers", "seconds", "per_s", "efficiency"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
