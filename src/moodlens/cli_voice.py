"""Voice commands of the command line: ``moodlens voice`` and the voice halves
of ``train``, ``evaluate`` and ``export`` (cli.py dispatches here by task).

Like the rest of the CLI, a thin adapter over the Python API.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_SOME_FAILED, EXIT_FATAL = 0, 1, 2


def add_voice(sub) -> None:
    from .voice.audio import AUDIO_SUFFIXES

    p = sub.add_parser("voice", help="classify the emotion in speech recordings",
                       description="Classify the emotion of each audio file (WAV, FLAC, OGG, MP3, ...). Recordings "
                                   "longer than --long-seconds are cut into speech segments, each with its own label. "
                                   "Files that fail are reported; the rest go on.")
    p.add_argument("inputs", nargs="+", metavar="PATH",
                   help=f"audio files, folders (searched recursively for {', '.join(sorted(AUDIO_SUFFIXES))}) or glob patterns")
    p.add_argument("--model", default="default", help="bundled model name or path to a moodlens voice .onnx (default: %(default)s)")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output format (json = JSON lines)")
    p.add_argument("--segments", choices=["auto", "always", "never"], default="auto",
                   help="timeline of speech segments: for long recordings (auto), always, or never (default: %(default)s)")
    p.add_argument("--long-seconds", type=float, default=10.0,
                   help="with --segments auto, recordings longer than this are segmented (default: %(default)s)")
    p.add_argument("--vad", choices=["silero", "energy"], default="silero",
                   help="how speech segments are found: the bundled Silero network, which leaves music and noise out, "
                        "or frame energy above the noise floor (no model) (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default: %(default)s)")
    p.set_defaults(run=run_voice)


def run_voice(args) -> int:
    from .images import expand_inputs
    from .voice.audio import AUDIO_SUFFIXES
    from .voice.recognizer import VoiceOptions, VoiceRecognizer
    from .voice.writers import make_voice_writer

    recognizer = VoiceRecognizer(model=args.model, threads=args.threads,
                                 options=VoiceOptions(long_seconds=args.long_seconds, vad=args.vad))
    files, problems = expand_inputs(args.inputs, AUDIO_SUFFIXES)
    for msg in problems:
        print(f"error: {msg}", file=sys.stderr)
    if not files:
        print("error: no input files", file=sys.stderr)
        return EXIT_FATAL
    segment = {"auto": None, "always": True, "never": False}[args.segments]
    writer = make_voice_writer(args.format, recognizer.labels)
    failed = len(problems)
    for path in files:
        result = recognizer.predict_file(path, segment=segment)
        writer.write(result)
        failed += bool(result.error)
    writer.close()
    if failed:
        print(f"{failed} of {len(files) + len(problems)} inputs failed", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK


def add_evaluate_options(p) -> None:
    """Voice-only options of ``moodlens evaluate``."""
    from .data.speech import SPEECH_CORPORA

    p.add_argument("--corpus", choices=SPEECH_CORPORA,
                   help="voice: the corpus recipe that reads labels and speakers from --data's file names")
    p.add_argument("--speakers", nargs="+", metavar="ID",
                   help="voice: keep only these speakers, ranges allowed (e.g. --speakers 17-20)")
    p.add_argument("--relabel", nargs="+", default=[], metavar="FROM=TO",
                   help="voice: map corpus labels onto model labels (e.g. boredom=calm); unmapped unknown labels are dropped")


def run_evaluate_voice(args) -> int:
    from .data.speech import drop_duplicates, load_speech_corpus, select_speakers
    from .errors import DataError
    from .evaluate import show_report
    from .voice.evaluation import evaluate_voice
    from .voice.recognizer import VoiceRecognizer

    if not args.corpus:
        raise DataError("evaluate voice needs --corpus (ravdess, cremad, tess, savee or emodb) to read the labels")
    relabel = dict(item.split("=", 1) for item in args.relabel if "=" in item)
    recognizer = VoiceRecognizer(model=args.model, threads=args.threads)
    items = select_speakers(load_speech_corpus(args.corpus, args.data), args.speakers, str(args.data))
    items, duplicates = drop_duplicates(items)
    rep = evaluate_voice(recognizer, items, relabel, source=f"{args.data} ({args.corpus})", progress=not args.json)
    rep.extra["duplicates_dropped"] = [str(p) for p, _ in duplicates]
    show_report(rep, f"model {recognizer.model.path}\ndata  {args.data} ({args.corpus}, {rep.n} clips from "
                     f"{len(rep.extra['speakers'])} speakers)", args.json, args.out_dir)
    if not args.json and rep.extra["dropped"]:
        print(f"\nleft out (labels the model does not predict): {rep.extra['dropped']}")
    for f in rep.extra["failed"]:
        print(f"error: {f['error']}", file=sys.stderr)
    return EXIT_SOME_FAILED if rep.extra["failed"] else EXIT_OK


def add_export_options(p) -> None:
    """Voice-only options of ``moodlens export``."""
    p.add_argument("--int8", action="store_true", help="voice: quantise to int8 (voice models are fp32 by default)")
    p.add_argument("--no-eval", action="store_true",
                   help="voice: skip evaluating the exported model on the recipe's validation speakers")
    p.add_argument("--temperature", type=_temperature, default=None,
                   help="divide the logits by this in the exported graph; face: `auto` fits it on the recipe's "
                        "validation rows and adds calibration error and a reliability diagram to the card "
                        "(default: face 1, voice the recipe's temperature)")


def _temperature(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or auto, not {text!r}") from None


def run_export_voice(args) -> int:
    from .errors import DataError
    from .train.export import export_voice_model

    if args.temperature == "auto":
        raise DataError("voice: --temperature auto is face only; a voice temperature comes from "
                        "`python -m moodlens.train.voice_cv` (cross-validation over speakers)")

    from .cli import command_line

    command = command_line(args)
    card = export_voice_model(args.checkpoint, args.out, int8=args.int8, name=args.name, command=command,
                              evaluate=not args.no_eval, temperature=args.temperature)
    print(f"wrote {args.out} ({card['size_bytes'] / 1e6:.2f} MB, {card['format']}); "
          f"torch vs ONNX max |diff| {card['torch_onnx_max_abs_diff']:.2e}")
    if "evaluation" in card:
        e = card["evaluation"]
        print(f"{e['data']}: accuracy {e['accuracy']:.4f}, UAR {e['uar']:.4f}, macro F1 {e['macro_f1']:.4f}; "
              f"3 s clip {card['latency_ms_3s_clip_1_thread']:.1f} ms on one thread")
    return EXIT_OK
