"""Command line: a thin adapter over the Python API.

Exit codes: 0 everything worked; 1 some inputs failed (the rest were still
processed); 2 bad usage or a fatal error (message on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from .cli_analyze import add_analyze as _add_analyze
from .cli_ray import add_engine_options, check_engine_options, run_ray
from .cli_serve import add_serve as _add_serve
from .cli_tune import add_tune as _add_tune
from .cli_video import VIDEO_SUFFIXES, add_video_options, is_video_path, run_videos
from .cli_video import add_commands as _add_video_commands
from .cli_voice import add_evaluate_options as _add_voice_evaluate_options  # voice: cli_voice.py
from .cli_voice import add_export_options as _add_voice_export_options  # voice
from .cli_voice import add_voice as _add_voice  # voice
from .errors import MoodlensError
from .face import DETECTORS

EXIT_OK, EXIT_SOME_FAILED, EXIT_FATAL = 0, 1, 2


def _add_face(sub) -> None:
    p = sub.add_parser("face", help="find faces in images and videos and classify their emotion",
                       description="Find every face in image files, videos, folders or glob patterns and "
                                   "classify its emotion. Files that fail are reported; the rest go on.")
    p.add_argument("inputs", nargs="+", metavar="PATH",
                   help="image or video files, folders (searched recursively) or glob patterns")
    p.add_argument("--model", default="default", help="bundled model name or path to a moodlens .onnx (default: %(default)s)")
    p.add_argument("--detector", default="blazeface", help=DETECTORS)
    p.add_argument("--no-detect", action="store_true", help="inputs are face crops already: classify the whole image")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output format (json = JSON lines)")
    p.add_argument("--save-dir", type=Path,
                   help="write annotated copies of the images (and a _moodlens.json result beside each, so a rerun "
                        "skips them) here, and each video's annotated MP4, timeline, summary and plot")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default: %(default)s)")
    add_video_options(p)
    add_engine_options(p)  # --engine local|ray, --address, --workers (cli_ray.py)
    p.set_defaults(run=_run_face)


def _run_face(args) -> int:
    from .images import IMAGE_SUFFIXES, expand_inputs, is_animated_gif, looks_like_image
    from .registry import model_path

    model_path(args.model, "face")  # an unknown model name is a usage error, whatever the inputs
    check_engine_options(args)
    # Videos, animated GIFs (and, with --frames, folders of frames) go to cli_video; images stay here.
    frame_dirs = [Path(i) for i in args.inputs if args.frames and Path(i).is_dir()]
    skipped: list[str] = []
    files, problems = expand_inputs([i for i in args.inputs if Path(i) not in frame_dirs],
                                    IMAGE_SUFFIXES | VIDEO_SUFFIXES, sniff=looks_like_image, skipped=skipped)
    for msg in skipped:
        print(f"note: {msg}", file=sys.stderr)
    for msg in problems:
        print(f"error: {msg}", file=sys.stderr)
    is_video = {f: is_video_path(f) or is_animated_gif(f) for f in files}
    videos = frame_dirs + [f for f in files if is_video[f]]
    images = [f for f in files if not is_video[f]]
    if not images and not videos:
        print("error: no input files", file=sys.stderr)
        return EXIT_FATAL
    if args.engine == "ray":
        return run_ray(args, images, videos, problems)
    codes = [_run_images(args, images, problems) if images else (EXIT_SOME_FAILED if problems else EXIT_OK)]
    if videos:
        codes.append(run_videos(args, videos))
    return 130 if 130 in codes else max(codes)


def _run_images(args, files, problems) -> int:
    from .image_batch import process_images, report
    from .registry import load_model
    from .writers import make_writer

    writer = make_writer(args.format, load_model(args.model, "face").labels)
    failed, skipped = len(problems), 0
    show_progress = sys.stderr.isatty() and len(files) > 1
    # with --save-dir: annotated copy + result sidecar; an image done before is not redone
    results = process_images(files, args.save_dir, model=args.model, detector=args.detector, threads=args.threads,
                             detect=not args.no_detect, overwrite=args.overwrite, jobs=args.jobs)
    for i, (path, (result, done_before)) in enumerate(zip(files, results), start=1):
        if show_progress:  # a terminal gets a live counter; logs and pipes stay clean
            print(f"\r[{i}/{len(files)}] {path.name[:60]:<60}", end="", file=sys.stderr, flush=True)
        writer.write(result)
        failed += bool(result.error)
        skipped += done_before
    if show_progress:
        print("\r" + " " * 72 + "\r", end="", file=sys.stderr, flush=True)
    writer.close()
    report(failed, len(files) + len(problems), skipped, args.save_dir)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="convert a corpus into class folders and a fast cache")
    p.add_argument("corpus", choices=["fer2013"], help="which corpus")
    p.add_argument("source", help="fer2013.csv or fer2013.csv.gz")
    p.add_argument("out_dir", type=Path, help="output folder: <split>/<class>/<row>.png and fer2013.npz")
    p.add_argument("--no-png", action="store_true", help="only write the .npz cache")
    p.set_defaults(run=_run_prepare)


def _run_prepare(args) -> int:
    from .data.prepare import prepare_fer2013

    counts = prepare_fer2013(args.source, args.out_dir, write_png=not args.no_png)
    for split, per_class in counts.items():
        print(f"{split}: {sum(per_class.values())} images  " + "  ".join(f"{k} {v}" for k, v in per_class.items()))
    print(f"wrote {args.out_dir / 'fer2013.npz'}" + ("" if args.no_png else f" and class folders under {args.out_dir}"))
    return EXIT_OK


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model from a recipe ([train] extra)")
    p.add_argument("task", choices=["face", "voice"], help="what to train")
    p.add_argument("--config", type=Path, help="recipe YAML (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set optim.epochs=5 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt")
    p.set_defaults(run=_run_train)


def command_line(args) -> str:
    """The command as typed, for model cards' "Reproduce"."""
    return "moodlens " + " ".join(shlex.quote(a) for a in args.argv)


def _run_train(args) -> int:
    from .train.config import load_config

    if args.task == "voice":
        from .train.voice import train_voice as train
    else:
        from .train.face import train_face as train
    from .train import distributed

    cfg = load_config(args.config, args.overrides, task=args.task)  # a recipe of the other task is an error
    world = distributed.current()  # under torchrun: joins the other processes
    if not world.is_main:  # one log: rank 0 reports for all (errors still reach stderr)
        sys.stdout = open(os.devnull, "w")
    try:
        result = train(cfg, resume=args.resume, command=command_line(args))
    except KeyboardInterrupt:
        return 130
    finally:
        distributed.shutdown()
    if world.is_main:
        print(json.dumps(result))
    return EXIT_OK


def _add_distill(sub) -> None:
    p = sub.add_parser("distill", help="train a student on the soft labels of teacher models ([train] extra)",
                       description="Run the teacher checkpoints over the recipe's training rows once, cache their "
                                   "soft labels (distill.soft_labels, or OUT_DIR/soft_labels.npz), and train the "
                                   "student recipe on hard labels plus the teachers' distribution. Without "
                                   "--teachers the recipe's cache is used as it is.")
    p.add_argument("task", choices=["face"], help="what to distil")
    p.add_argument("--teachers", nargs="+", metavar="CKPT", help="teacher training checkpoints (best.pt)")
    p.add_argument("--config", type=Path, help="the student's recipe YAML (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set distill.alpha=0.7 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from OUT_DIR/last.pt with the cached soft labels")
    p.add_argument("--cache-only", action="store_true", help="build the soft-label cache from --teachers and stop")
    p.add_argument("--append", action="store_true",
                   help="add --teachers to the existing cache (its teachers are kept; their checkpoints are not needed)")
    p.set_defaults(run=_run_distill)


def _run_distill(args) -> int:
    from .train.config import load_config
    from .train.distill import distill_face

    cfg = load_config(args.config, args.overrides, task=args.task)
    try:
        result = distill_face(cfg, teachers=args.teachers, resume=args.resume, cache_only=args.cache_only,
                              append=args.append, command=command_line(args))
    except KeyboardInterrupt:
        return 130
    print(json.dumps(result))
    return EXIT_OK


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy, per-class metrics and confusion matrix on labelled data")
    p.add_argument("task", choices=["face", "voice"], help="what to evaluate")
    p.add_argument("--model", default="default", help="bundled model name or .onnx path")
    p.add_argument("--data", required=True, help="FER-2013 CSV(.gz), .npz cache, image folders, or CK+48 folder; "
                                                 "voice: a speech corpus folder (every file is test data)")
    p.add_argument("--kind", default="auto", choices=["auto", "ckplus"], help="data layout (default: by path)")
    p.add_argument("--usage", help="keep only this split (e.g. PublicTest); default: all rows")
    p.add_argument("--tta", action="store_true", help="average with the mirrored face (test-time augmentation)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.add_argument("--out-dir", type=Path, help="also write report.json and confusion.png here")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads (default: %(default)s)")
    _add_voice_evaluate_options(p)  # voice: --corpus, --speakers, --relabel
    p.set_defaults(run=_run_evaluate)


def _run_evaluate(args) -> int:
    if args.task == "voice":  # voice: cli_voice.py
        from .cli_voice import run_evaluate_voice

        return run_evaluate_voice(args)
    from .data import load_face_data
    from .evaluate import show_report
    from .face.evaluation import evaluate_face
    from .registry import load_model

    model = load_model(args.model, task="face", threads=args.threads)
    data = load_face_data(args.data, args.kind)
    if args.usage:
        data = data.split(args.usage)
    rep = evaluate_face(model, data, tta=args.tta)
    rep.extra["usage"] = args.usage or "all"
    show_report(rep, f"model {model.path}\ndata  {data.source} ({rep.extra['usage']}, {rep.n} images"
                     f"{', flip TTA' if args.tta else ''})", args.json, args.out_dir)
    return EXIT_OK


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="checkpoint -> ONNX with metadata and model card ([train] extra)")
    p.add_argument("task", choices=["face", "voice"])
    p.add_argument("checkpoint", help="best.pt or last.pt from `moodlens train`")
    p.add_argument("--out", required=True, type=Path, help="output .onnx path (card written beside as .json)")
    p.add_argument("--fp32", action="store_true", help="skip int8 quantisation")
    p.add_argument("--calibration-data", help="images for int8 calibration (default: the recipe's training data)")
    p.add_argument("--eval-data", help="evaluate the exported model on this data and put the metrics in the card")
    p.add_argument("--eval-usage", default="PublicTest", help="split of --eval-data (default: %(default)s)")
    p.add_argument("--name", help="model name in the card (default: the recipe's)")
    p.add_argument("--flip-tta", action="store_true", help="bake mirror-image averaging into the graph (2x compute)")
    _add_voice_export_options(p)  # voice: --int8, --no-eval
    p.set_defaults(run=_run_export)


def _run_export(args) -> int:
    if args.task == "voice":  # voice: cli_voice.py
        from .cli_voice import run_export_voice

        return run_export_voice(args)
    from .train.export import export_face_model

    command = command_line(args)
    card = export_face_model(args.checkpoint, args.out, int8=not args.fp32, calibration_data=args.calibration_data,
                             eval_data=args.eval_data, eval_usage=args.eval_usage, name=args.name, command=command,
                             flip_tta=args.flip_tta, temperature=args.temperature)
    print(f"wrote {args.out} ({card['size_bytes'] / 1e6:.1f} MB, {card['format']}); "
          f"torch vs ONNX max |diff| {card['torch_onnx_max_abs_diff']:.2e}")
    c = card.get("calibration")
    if c:
        print(f"temperature {c['temperature']:.3f} ({c['fitted_on']}): ECE {c['val_ece_before']:.4f} -> "
              f"{c['val_ece_after']:.4f} there" + (f"; on {c['test_usage']} {c['test_ece_before']:.4f} -> "
                                                   f"{c['test_ece_after']:.4f}" if "test_usage" in c else ""))
    if "evaluation" in card:
        e = card["evaluation"]
        print(f"{e['data']}: accuracy {e['accuracy']:.4f}, macro F1 {e['macro_f1']:.4f}, "
              f"with flip TTA {e['accuracy_with_flip_tta']:.4f}")
    return EXIT_OK


def _add_ensemble(sub) -> None:
    p = sub.add_parser("ensemble", help="average several exported face or voice models in one ONNX file ([train] extra)",
                       description="Put exported models of one task (face or voice) side by side in one graph that averages their "
                                   "probabilities; use the result with --model PATH like any model.")
    p.add_argument("members", nargs="+", type=Path, help="exported face or voice models (.onnx), two or more")
    p.add_argument("--out", required=True, type=Path, help="output .onnx path")
    p.add_argument("--weights", type=float, nargs="+", help="one weight per member (default: equal)")
    p.add_argument("--name", help="model name in the metadata (default: face-ensemble or voice-ensemble)")
    p.set_defaults(run=_run_ensemble)


def _run_ensemble(args) -> int:
    from .train.ensemble import build_ensemble

    card = build_ensemble(args.members, args.out, args.weights, args.name)
    print(f"wrote {args.out}: {len(card['ensemble'])} members, weights "
          + ", ".join(f"{m['name']} {m['weight']:.3f}" for m in card["ensemble"]))
    if card["task"] == "voice":  # voice cards are completed with an evaluation on the members' held-out speakers
        from .train.voice_export import voice_ensemble_card

        command = command_line(args)
        card = voice_ensemble_card(args.out, args.members, command=command)
        if "evaluation" in card:
            e = card["evaluation"]
            print(f"{e['data']}: accuracy {e['accuracy']:.4f}, UAR {e['uar']:.4f}, ECE {e['ece_15_bins']:.4f}; "
                  f"{card['latency_ms_3s_clip_1_thread']:.1f} ms per 3 s clip on one thread; card {args.out.with_suffix('.md')}")
    return EXIT_OK


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list bundled models and their model cards")
    p.add_argument("--json", action="store_true", help="print the full model cards")
    p.set_defaults(run=_run_models)


def _run_models(args) -> int:
    from .registry import BUNDLED, DEFAULTS, available_models, model_card

    names = available_models()
    if args.json:
        print(json.dumps({n: model_card(n) for n in names}, indent=2))
        return EXIT_OK
    for n in names:
        card = model_card(n)
        task = BUNDLED[n][0]
        ev = card.get("evaluation", {})
        default = " (default)" if DEFAULTS.get(task) == n else ""
        print(f"{n}{default}: {task}, {len(card['labels'])} classes, {card['size_bytes'] / 1e6:.1f} MB, "
              f"accuracy {ev.get('accuracy', float('nan')):.4f} on {ev.get('data', '?')}")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="moodlens", description="Emotion recognition from faces, offline.")
    parser.add_argument("--version", action="version", version=f"moodlens {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_face, _add_video_commands, _add_voice, _add_analyze, _add_serve, _add_prepare, _add_train,
                _add_tune, _add_distill, _add_evaluate, _add_export, _add_ensemble,
                _add_models):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # recorded in model cards as the command that made them
    try:
        return args.run(args)
    except MoodlensError as exc:
        if os.environ.get("RANK", "0") == "0":  # under torchrun every rank meets the same bad input: say it once
            print(f"error: {exc}", file=sys.stderr)
        return EXIT_FATAL
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
