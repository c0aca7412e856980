"""Command line for video: `moodlens face clip.mp4 ...` and `moodlens live`.

`moodlens face` hands its video inputs (and, with --frames, folders of frames)
to :func:`run_videos`; :func:`add_video_options` adds the options they need.

Outputs of `moodlens face clip.mp4 --save-dir OUT`: OUT/clip_moodlens.mp4
(annotated), OUT/clip_timeline.jsonl (.csv with --format csv), OUT/clip_scores.png
and OUT/clip_summary.json (written last; a complete one makes a later run skip
the video). Without --save-dir nothing is written: the per-track summary is
printed in the chosen --format.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from .errors import InputError
from .video.sources import DEFAULT_FPS, VIDEO_SUFFIXES, is_video_path

EXIT_OK, EXIT_SOME_FAILED, EXIT_FATAL, EXIT_INTERRUPTED = 0, 1, 2, 130
LIVE_DETECTOR = "blazeface:short"  # moodlens live's default detector

__all__ = ["VIDEO_SUFFIXES", "add_commands", "add_video_options", "is_video_path", "run_videos"]


def add_video_options(parser: argparse.ArgumentParser, live: bool = False) -> None:
    """Tracking, smoothing and output options (defaults: files; ``live``: webcam)."""
    from .video.pipeline import VideoOptions

    d = VideoOptions.live() if live else VideoOptions()
    g = parser.add_argument_group("video" if not live else "tracking and output")
    g.add_argument("--every", type=int, default=d.every, metavar="N",
                   help="run the face detector on every Nth frame and follow faces in between (default: every "
                        f"frame with blazeface, every {d.slow_every}th with haar)")
    parser.set_defaults(slow_every=d.slow_every)
    g.add_argument("--detect-width", type=int, default=d.detect_width, metavar="PX",
                   help="detect faces on frames shrunk to this width; 0 = full size (default: half the frame "
                        "width, at most 480). BlazeFace finds faces from ~7%% of the frame width either way; "
                        "Haar misses faces below 24 x (frame width / PX) pixels")
    g.add_argument("--smooth", choices=["ema", "window", "off"], default=d.smooth,
                   help="smooth each face's scores over time (default: %(default)s)")
    g.add_argument("--smooth-alpha", type=float, default=d.alpha, metavar="A",
                   help="ema: weight of the newest frame, 0-1; smaller is steadier (default: %(default)s)")
    g.add_argument("--window", type=int, default=d.window, metavar="N",
                   help="window: frames averaged (default: %(default)s)")
    g.add_argument("--codec", choices=["auto", "h264", "mp4v"], default=d.codec,
                   help="annotated video codec: h264 needs PyAV (pip install av); auto = h264 if available, "
                        "else mp4v (default: %(default)s)")
    g.add_argument("--no-plot", action="store_true", help="do not write the scores-over-time PNG")
    if not live:
        g.add_argument("--jobs", type=int, default=2, metavar="N",
                       help="worker processes: videos at once, one each; images (64 or more) in batches of 16 "
                            "(default: %(default)s)")
        g.add_argument("--overwrite", action="store_true",
                       help="redo images and videos whose outputs in --save-dir are already complete (default: "
                            "skip them and print their stored results)")
        g.add_argument("--frames", action="store_true",
                       help="treat each folder given as the frames of one video (in name order)")
        g.add_argument("--fps", type=float, default=DEFAULT_FPS,
                       help="frame rate of folders of frames (default: %(default)s)")


def video_options(args):
    from .video.pipeline import VideoOptions

    fmt = getattr(args, "format", "json")
    try:
        return VideoOptions(every=args.every, slow_every=args.slow_every, detect_width=args.detect_width, smooth=args.smooth,
                            alpha=args.smooth_alpha, window=args.window, codec=args.codec,
                            timeline_format="csv" if fmt == "csv" else "jsonl", plot=not args.no_plot,
                            threads=args.threads)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


class _Printer:
    """Prints each video's summary in the chosen format as it arrives."""

    def __init__(self, fmt: str, labels: tuple[str, ...], out=None):
        self.fmt, self.labels, self.out = fmt, labels, out or sys.stdout
        self.csv = None
        self.failed = self.done = self.skipped = 0
        self.interrupted = False

    def __call__(self, s: dict) -> None:
        from .video.report import summary_text

        self.done += 1
        if s.get("error"):
            self.failed += 1
        elif s.get("truncated"):
            self.failed += 1  # results exist, but the input was damaged: say so in the exit code
        self.interrupted |= bool(s.get("interrupted"))
        self.skipped += bool(s.get("skipped"))
        if self.fmt == "json":
            self.out.write(json.dumps({k: v for k, v in s.items() if k != "settings"}) + "\n")
        elif self.fmt == "csv":
            self._csv(s)
        else:
            text = summary_text(s)
            if s.get("skipped"):
                text += f"\n  outputs already complete in {Path(s['outputs']['summary']).parent} (--overwrite redoes them)"
            self.out.write(text + "\n")
        self.out.flush()
        if not s.get("error") and not s.get("skipped") and s.get("outputs"):
            print("  wrote " + ", ".join(s["outputs"].values()), file=sys.stderr)

    def _csv(self, s: dict) -> None:
        if self.csv is None:
            self.csv = csv.writer(self.out, lineterminator="\n")
            self.csv.writerow(["source", "track", "start_s", "end_s", "duration_s", "frames", "dominant",
                               *(f"share_{l}" for l in self.labels), "status", "error"])
        status = "error" if s.get("error") else "interrupted" if s.get("interrupted") else "ok"
        if s.get("error") or not s.get("tracks"):
            self.csv.writerow([s["source"], "", "", "", "", "", "", *[""] * len(self.labels),
                               status if s.get("error") else "no_face", s.get("error") or ""])
            return
        for tr in s["tracks"]:
            self.csv.writerow([s["source"], tr["track"], tr["start_s"], tr["end_s"], tr["duration_s"], tr["frames"],
                               tr["dominant"], *(tr["share"].get(l, 0.0) for l in self.labels), status, ""])


def run_videos(args, video_paths: list[Path]) -> int:
    """`moodlens face` for video files and folders of frames. Returns an exit code."""
    import cv2

    from .registry import load_model
    from .video.batch import BatchSettings, run_batch

    if getattr(args, "no_detect", False):
        print("error: --no-detect is for face crops, not videos", file=sys.stderr)
        return EXIT_FATAL
    cv2.setNumThreads(max(1, args.threads))
    labels = load_model(args.model, task="face").labels  # fails early, before any worker starts
    settings = BatchSettings(model=args.model, detector=args.detector, threads=args.threads, jobs=args.jobs,
                             out_dir=args.save_dir, overwrite=args.overwrite, frames_fps=args.fps,
                             options=video_options(args))
    printer = _Printer(args.format, labels)
    finished = run_batch([Path(p) for p in video_paths], settings, printer)
    if not finished or printer.interrupted:
        print(f"interrupted: {printer.done} of {len(video_paths)} videos reported; run again to resume",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    if printer.failed:
        print(f"{printer.failed} of {len(video_paths)} videos failed or were damaged", file=sys.stderr)
    return EXIT_SOME_FAILED if printer.failed else EXIT_OK


# ---- moodlens live ---------------------------------------------------------------------------


def add_commands(sub) -> None:
    p = sub.add_parser("live", help="emotions of the faces on a webcam, live",
                       description="Read a webcam, track faces and show their smoothed emotion in a window "
                                   "(q or Esc quits) or headless (--no-display). Ctrl+C stops cleanly: every "
                                   "output is finalised. Without --save-dir the timeline streams to stdout.")
    p.add_argument("--camera", type=int, default=0, metavar="N", help="camera index (default: %(default)s)")
    p.add_argument("--size", default="640x480", metavar="WxH", help="capture size to ask the camera for (default: %(default)s)")
    p.add_argument("--model", default="default", help="bundled model name or path to a moodlens .onnx (default: %(default)s)")
    # A webcam frames faces within a metre or two: MediaPipe's short-range model
    # is made for that and costs ~0.6 ms a frame instead of ~2.1 ms.
    p.add_argument("--detector", default=LIVE_DETECTOR,
                   help="'blazeface:short' (default here: made for faces within ~2 m of the camera), "
                        "'blazeface' (full range, faces up to a few metres), 'haar' or 'yunet:PATH.onnx'")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime and OpenCV threads (default: %(default)s)")
    p.add_argument("--no-display", action="store_true", help="no window: only write the timeline and outputs")
    p.add_argument("--save-dir", type=Path, help="write live-<time>_moodlens.mp4, _timeline, _summary.json, _scores.png here")
    p.add_argument("--format", choices=["json", "csv"], default="json", help="timeline format (json = JSON lines)")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N frames")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument("--policy", type=Path, metavar="FILE",
                   help="content policy (YAML/JSON, see moodlens/policies/example.yaml): show the item it picks for "
                        "the mood of the largest face beside the video; headless, print each change")
    add_video_options(p, live=True)
    p.set_defaults(run=run_live)


def _window_check() -> None:
    import cv2

    try:
        cv2.namedWindow("moodlens", cv2.WINDOW_NORMAL)
    except cv2.error as exc:
        raise InputError("this OpenCV build cannot open windows (opencv-python-headless has no GUI); "
                         "run with --no-display") from exc


def _content(policy_path: Path, display: bool):
    """on_frame step for --policy: picks the content for the largest face's
    mood and prints each change (headless: as a JSON line on stderr). With a
    display it returns the frame to show, with the panel; headless, None."""
    from .adapt import ContentSelector, load_policy
    from .analyze import largest
    from .writers import with_content_panel

    selector = ContentSelector(load_policy(policy_path))

    def step(frame, annotated, faces):
        face = largest(faces)
        choice = selector.update(face.scores if face else None, frame.time)
        if choice.changed:
            record = {"t": round(frame.time, 3), "content": choice.item_id, "mood": choice.mood,
                      "score": round(choice.score, 4)}
            print(json.dumps(record) if not display else f"content: {choice.item_id} ({choice.mood or 'default'})",
                  file=sys.stderr, flush=True)
        return with_content_panel(annotated, choice) if display else None

    return step


def _display(content=None):
    """on_frame callback: show the annotated frame with the frame rate (and the
    content panel of ``content``); False (stop) when q or Esc is pressed or the
    window is closed."""
    import cv2

    last = [time.perf_counter()]

    def show(frame, annotated, faces):
        if content is not None:
            annotated = content(frame, annotated, faces)
        now = time.perf_counter()
        fps = 1.0 / max(1e-6, now - last[0])
        last[0] = now
        cv2.putText(annotated, f"{fps:4.1f} fps  q quits", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                    (255, 255, 255), 2, cv2.LINE_AA)
        cv2.imshow("moodlens", annotated)
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27) or cv2.getWindowProperty("moodlens", cv2.WND_PROP_VISIBLE) < 1:
            return False
        return None

    return show


def run_live(args) -> int:
    import cv2

    from .face.recognizer import FaceRecognizer
    from .video.pipeline import OutputPaths, VideoProcessor
    from .video.report import summary_text
    from .video.sources import CameraSource

    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        raise InputError(f"--size {args.size!r}: expected WIDTHxHEIGHT, e.g. 640x480") from None
    cv2.setNumThreads(max(1, args.threads))
    options = video_options(args)
    recognizer = FaceRecognizer(model=args.model, detector=args.detector, threads=args.threads)
    if not args.no_display:
        _window_check()
    outputs = None
    if args.save_dir is not None:
        stem = time.strftime("live-%Y%m%d-%H%M%S")
        outputs = OutputPaths.for_stem(args.save_dir, stem, options.timeline_format)
    processor = VideoProcessor(recognizer, options)
    content = _content(args.policy, display=not args.no_display) if args.policy else None
    show = content if args.no_display else _display(content)  # headless, content() returns None: go on
    with CameraSource(args.camera, width, height, max_frames=args.max_frames, max_seconds=args.duration) as source:
        try:
            summary = processor.process(source, outputs, on_frame=show,
                                        timeline_out=None if outputs else sys.stdout)
        finally:
            if not args.no_display:
                cv2.destroyAllWindows()
    # stdout carries the timeline when nothing is saved; the summary then goes to stderr
    print(summary_text(summary), file=sys.stdout if outputs else sys.stderr)
    if outputs:
        print("  wrote " + ", ".join(summary["outputs"].values()), file=sys.stderr)
    return EXIT_OK  # Ctrl+C is how a headless live session normally ends; its outputs are complete
