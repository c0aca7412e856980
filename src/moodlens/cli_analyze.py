"""`moodlens analyze`: face + voice fused, from an image and an audio clip or a video with sound."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .face import DETECTORS

EXIT_OK, EXIT_SOME_FAILED, EXIT_FATAL = 0, 1, 2


def add_analyze(sub) -> None:
    p = sub.add_parser("analyze", help="fuse face and voice: an image + an audio clip, or a video with sound",
                       description="Classify the face (the largest one) and the voice separately and fuse the two "
                                   "distributions, weighted by each one's confidence. If one modality is missing or "
                                   "fails, the other is used alone and the output says so.")
    p.add_argument("--image", type=Path, help="photo of the speaker")
    p.add_argument("--audio", type=Path, help="audio clip (WAV, FLAC, OGG, MP3)")
    p.add_argument("--video", type=Path, help="video file: faces from its frames, voice from its audio track "
                                              "(audio needs the [video] extra)")
    p.add_argument("--face-weight", type=float, default=1.0, help="relative weight of the face (default: %(default)s)")
    p.add_argument("--voice-weight", type=float, default=1.0, help="relative weight of the voice (default: %(default)s)")
    p.add_argument("--no-confidence", action="store_true",
                   help="use the weights as given, not scaled by each modality's confidence on the input")
    p.add_argument("--face-model", default="default", help="face model name or .onnx path (default: %(default)s)")
    p.add_argument("--voice-model", default="default", help="voice model name or .onnx path (default: %(default)s)")
    p.add_argument("--detector", default="blazeface", help=DETECTORS)
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run_analyze)


def run_analyze(args) -> int:
    from .analyze import Analyzer
    from .errors import InputError
    from .fusion import FusionSettings

    if args.video and (args.image or args.audio):
        raise InputError("give --video alone, or --image and/or --audio")
    if not (args.video or args.image or args.audio):
        raise InputError("nothing to analyze: give --image and/or --audio, or --video")
    try:
        fusion = FusionSettings(args.face_weight, args.voice_weight, use_confidence=not args.no_confidence)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    analyzer = Analyzer(args.face_model, args.voice_model, args.detector, args.threads, fusion)
    if args.video:
        result = analyzer.analyze_video(args.video)
    else:
        result = analyzer.analyze(image=args.image, audio=args.audio)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(analysis_text(result.to_dict()))
    for why in result.errors.values():
        print(f"error: {why}", file=sys.stderr)
    return EXIT_SOME_FAILED if result.errors or not result.ok else EXIT_OK


def analysis_text(r: dict) -> str:
    """A few aligned lines: fused first, then each modality, then notes."""
    f = r["fused"]

    def top(scores: dict, n: int = 3) -> str:
        return "  ".join(f"{k} {v:.2f}" for k, v in sorted(scores.items(), key=lambda kv: -kv[1])[:n])

    lines = []
    if f["label"] is None:
        lines.append("fused   -     no result")
    else:
        weights = ", ".join(f"{m} {w:.2f}" for m, w in f["weights"].items())
        lines.append(f"fused   {f['label']:<9} {f['score']:.2f}   ({top(f['scores'])}; weights {weights})")
    if r["face"]:
        where = r["face"].get("box")
        extra = f"{r['face']['faces']} face(s), largest at {where}" if "faces" in r["face"] else \
            f"{r['face']['frames_with_face']} frames with a face"
        lines.append(f"face    {r['face']['label']:<9} {r['face']['score']:.2f}   ({extra})")
    else:
        lines.append(f"face    -     {r['errors'].get('face', 'no result (see notes)')}")
    if r["voice"]:
        v = r["voice"]
        extra = f"{v['duration']:.1f} s" + (f", {len(v['segments'])} segments" if v["segments"] else "")
        lines.append(f"voice   {v['label']:<9} {v['score']:.2f}   ({extra})")
    else:
        lines.append(f"voice   -     {r['errors'].get('voice', 'no result (see notes)')}")
    for row in r.get("timeline", []):
        lines.append(f"  {row['start']:7.2f}-{row['end']:7.2f} s  {row['label']:<9} {row['score']:.2f}  "
                     f"({'+'.join(row['modalities'])})")
    lines.extend(f"note: {n}" for n in f["notes"])
    return "\n".join(lines)
