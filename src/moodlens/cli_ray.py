"""`moodlens face --engine ray`: the same job spread over a Ray cluster.

Outputs are those of the local engine (the same code runs on the workers:
see moodlens/ray.py): results on stdout in input order (images, then
videos), annotated copies, sidecars and video outputs in --save-dir, and a
rerun skips what is complete there. Ray itself is imported only here and in
moodlens.ray, so the core install does not need it.
"""

from __future__ import annotations

import contextlib
import sys

from .errors import InputError, require

EXIT_OK, EXIT_SOME_FAILED, EXIT_FATAL, EXIT_INTERRUPTED = 0, 1, 2, 130


def add_engine_options(parser) -> None:
    g = parser.add_argument_group("engine")
    g.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this machine; ray: spread the files over a Ray cluster, one model per worker "
                        "(pip install 'moodlens[ray]') (default: %(default)s)")
    g.add_argument("--address", metavar="auto|ray://HOST:PORT",
                   help="ray: the cluster to use: 'auto' (the one this machine is part of, or RAY_ADDRESS) or "
                        "ray://HOST:PORT (Ray Client); default: a Ray instance on this machine for this run")
    g.add_argument("--workers", type=int, metavar="N",
                   help="ray: model workers, one CPU each (default: every CPU of the cluster)")


def check_engine_options(args) -> None:
    """Usage errors, raised before any input is read."""
    if args.engine != "ray" and (args.address is not None or args.workers is not None):
        raise InputError("--address and --workers are for --engine ray")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: must be at least 1")


def run_ray(args, images, videos, problems) -> int:
    """`moodlens face` on Ray for the expanded inputs. Returns an exit code."""
    require("ray", "ray")
    if videos and args.no_detect:
        print("error: --no-detect is for face crops, not videos", file=sys.stderr)
        return EXIT_FATAL
    from . import ray as engine
    from .cli_video import _Printer, video_options
    from .image_batch import report
    from .registry import load_model
    from .video.batch import BatchSettings
    from .writers import make_writer

    labels = load_model(args.model, task="face").labels  # a bad --model fails here, before Ray starts
    video = BatchSettings(model=args.model, detector=args.detector, threads=args.threads, jobs=1,
                          out_dir=args.save_dir, overwrite=args.overwrite, frames_fps=args.fps,
                          options=video_options(args)) if videos else None
    out = sys.stdout  # results only: see the redirect below
    writer = make_writer(args.format, labels, out)
    printer = _Printer(args.format, labels, out)
    counts = {"failed": len(problems), "skipped": 0}

    progress = _progress if sys.stderr.isatty() and len(images) + len(videos) > 1 else None

    def on_image(result, done_before: bool) -> None:
        if progress:
            _clear()  # the counter line
        writer.write(result)
        counts["failed"] += bool(result.error)
        counts["skipped"] += done_before

    def on_video(summary: dict) -> None:
        if progress:
            _clear()
        printer(summary)

    try:
        # Ray prints what happens on the cluster ("A worker died ...") to
        # sys.stdout, from a thread of its own; here stdout carries results.
        with contextlib.redirect_stdout(sys.stderr), engine.session(args.address, cpus=args.workers):
            engine.check_workers(engine.RUNTIME_ENV)
            engine.run_files(images, videos, model=args.model, detector=args.detector, threads=args.threads,
                             detect=not args.no_detect, save_dir=args.save_dir, overwrite=args.overwrite,
                             video=video, workers=args.workers, on_image=on_image, on_video=on_video,
                             on_progress=progress)
    except KeyboardInterrupt:
        if progress:
            _clear()
        print("interrupted; run again with the same --save-dir to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    writer.close()
    code = EXIT_OK
    if images or problems:
        report(counts["failed"], len(images) + len(problems), counts["skipped"], args.save_dir)
        code = EXIT_SOME_FAILED if counts["failed"] else EXIT_OK
    if printer.failed:
        print(f"{printer.failed} of {len(videos)} videos failed or were damaged", file=sys.stderr)
        code = EXIT_SOME_FAILED
    return code


def _progress(done: int, total: int) -> None:
    # a terminal gets a live counter; logs and pipes stay clean
    print(f"\r[{done}/{total}]", end="", file=sys.stderr, flush=True)
    if done == total:
        _clear()


def _clear() -> None:
    print("\r" + " " * 24 + "\r", end="", file=sys.stderr, flush=True)
