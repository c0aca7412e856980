"""Face models on FER-2013 PublicTest, with the original labels and with FER+'s.

    python benchmarks/face_accuracy.py                      # the bundled default
    python benchmarks/face_accuracy.py default runs/x.onnx  # several, side by side
    python benchmarks/face_accuracy.py --usage validation runs/x.onnx runs/y.onnx
                                                            # the recipes' validation rows (choose on these)

FER-2013's labels are one annotator's, and about a third of them disagree with
the FER+ crowd (10 votes per face). A model that gains on FER-2013 labels but
not on FER+ majority labels has learned FER-2013's label noise, not faces.
Rows whose FER+ majority is contempt, unknown or not-a-face are left out of
the FER+ column (the models predict FER-2013's seven classes). Also printed:
expected calibration error (15 bins) of the probabilities.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import FER_CSV, SHARED, require_shared, table  # noqa: E402
from moodlens.data import load_fer2013, load_ferplus  # noqa: E402
from moodlens.face.evaluation import align_labels, evaluate_face, face_probabilities  # noqa: E402
from moodlens.registry import load_model  # noqa: E402
from moodlens.train.calibration import ece  # noqa: E402
from moodlens.train.config import load_config  # noqa: E402

FERPLUS_CSV = SHARED / "fer2013" / "fer2013new.csv"
# The validation rows of the val_split recipes (teachers and students share them), read from the student's recipe
VAL_RECIPE = Path(__file__).resolve().parent.parent / "configs" / "face_student.yaml"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", default=["default"], help="bundled model names or .onnx paths")
    ap.add_argument("--usage", default="PublicTest",
                    help="split to measure (default: %(default)s), or 'validation': the rows of Training that "
                         "configs/face_student.yaml's val_split holds out (10%%, stratified, seed 0), where the "
                         "recipes pick epochs; models trained on all of Training "
                         "(the bundled face-resnet) have seen those rows")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if args.usage == "validation":  # no FER+ column: its majority labels would stratify other rows
        data = load_config(VAL_RECIPE, task="face").data
        training = load_fer2013(require_shared(FER_CSV), usage="Training")
        fer, plus = training.holdout(data.val_split, data.val_seed)[1], None
    else:
        fer = load_fer2013(require_shared(FER_CSV), usage=args.usage)
        plus = load_ferplus(FER_CSV, require_shared(FERPLUS_CSV)).split(args.usage)
    rows = []
    for name in args.models:
        model = load_model(name, "face", threads=args.threads)
        plain, tta = evaluate_face(model, fer), evaluate_face(model, fer, tta=True)
        on_plus = evaluate_face(model, plus, tta=True) if plus is not None else None
        true, keep = align_labels(fer, model.labels)
        probs = face_probabilities(model, fer.images[keep], tta=True)
        rows.append({"model": name, "accuracy": f"{plain.accuracy:.4f}", "with flip": f"{tta.accuracy:.4f}",
                     "macro F1 (flip)": f"{tta.macro_f1:.4f}",
                     "FER+ accuracy (flip, faces)": f"{on_plus.accuracy:.4f} ({on_plus.n})" if on_plus else "-",
                     "ECE (flip)": f"{ece(probs, true[keep]):.4f}"})
    plus_note = f"FER+ majority labels on {len(plus)} of them" if plus is not None else "FER+ not measured"
    print(f"FER-2013 {args.usage}: {len(fer)} faces; {plus_note}\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
