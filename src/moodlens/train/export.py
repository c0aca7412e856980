"""Checkpoint -> ONNX with moodlens metadata, optional int8, and a parity check.

The exported graph takes float32 (N, 1, 48, 48) pixels in [0, 1] (the net
normalises inside) and returns logits. Static int8 quantisation (QDQ, per
channel, calibrated on training images) makes the model ~4x smaller and ~3x
faster on CPU; its accuracy is re-measured before anything ships.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..io import atomic_path
from ..runtime import METADATA_KEY, softmax
from .calibration import Tempered
from .config import config_from_dict
from .nets import build_net


class FlipAverage(torch.nn.Module):
    """Bakes flip test-time augmentation into the graph: mean of the logits of
    the face and its mirror image (one batch of 2N through the net)."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        n = x.shape[0]
        logits = self.net(torch.cat([x, x.flip(-1)]))
        return (logits[:n] + logits[n:]) / 2  # slices, not chunk(2): keeps the batch axis dynamic


def load_checkpoint(path: str | Path, use_ema: bool = True) -> tuple[torch.nn.Module, dict]:
    """Rebuild the net from the config stored in the checkpoint and load its weights."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "config" not in state:
        raise ValueError(f"{path}: not a moodlens training checkpoint")
    cfg = config_from_dict(state["config"])
    labels = state["card"]["labels"]
    if cfg.task == "voice":
        from .voice_nets import voice_net_for

        net = voice_net_for(cfg, len(labels))
    else:
        net = build_net(cfg.model.arch, len(labels), **cfg.model.options)
    weights = state["ema"] if use_ema and state.get("ema") is not None else state["model"]
    net.load_state_dict(weights)
    net.eval()
    return net, state


def _set_metadata(onnx_path: Path, meta: dict) -> None:
    import onnx

    model = onnx.load(str(onnx_path))
    del model.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.save(model, str(onnx_path))


def export_onnx(net: torch.nn.Module, example: torch.Tensor, path: Path, meta: dict) -> None:
    net = net.to(memory_format=torch.contiguous_format).eval()
    with atomic_path(path) as tmp:
        onnx_program = torch.onnx.export(
            net, (example,), dynamo=True, input_names=["input"], output_names=["logits"],
            dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1, max=4096)}},
        )
        onnx_program.save(str(tmp))
        _set_metadata(tmp, meta)


class _Calibration:
    """Feeds training images to ONNX Runtime's static quantiser."""

    def __init__(self, batches: list[np.ndarray], input_name: str):
        self._it = iter([{input_name: b} for b in batches])

    def get_next(self):
        return next(self._it, None)


def quantize_int8(fp32_path: Path, out_path: Path, calibration: np.ndarray, meta: dict) -> None:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    # dynamo exports carry value_info that trips the quantiser's shape inference
    model = onnx.load(str(fp32_path))
    del model.graph.value_info[:]
    with tempfile.TemporaryDirectory() as tmpdir:
        clean = Path(tmpdir) / "clean.onnx"
        onnx.save(model, str(clean))
        batches = [calibration[i:i + 64] for i in range(0, len(calibration), 64)]
        with atomic_path(out_path) as tmp:
            quantize_static(
                str(clean), str(tmp), _Calibration(batches, model.graph.input[0].name),
                quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
            )
            _set_metadata(tmp, meta)


def parity(net: torch.nn.Module, onnx_path: Path, x: np.ndarray) -> float:
    """Largest absolute logit difference between torch and ONNX Runtime on ``x``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    return float(np.abs(ref - got).max())


DATA_TERMS = {
    "fer2013": ("FER-2013 (Goodfellow et al. 2013, Kaggle ICML 2013 workshop challenge): distributed by Kaggle "
                "for research use; no explicit licence. The model is a derived work trained on it: "
                "use it for research, and check the terms before commercial use."),
    "ferplus": "FER+ labels: MIT licence (Microsoft); images are FER-2013's (see fer2013).",
}


def export_face_model(checkpoint: str | Path, out: str | Path, int8: bool = True,
                      calibration_data: str | None = None, eval_data: str | None = None,
                      eval_usage: str = "PublicTest", name: str | None = None, command: str = "",
                      flip_tta: bool = False, temperature: float | str | None = None) -> dict:
    """Export a face checkpoint; evaluate the exported file; write the model card.

    ``temperature``: the exported logits are divided by it; ``"auto"`` fits it on
    the recipe's validation rows (never on ``eval_data``), and the card then
    gains the expected calibration error before and after, and
    ``<out>.reliability.png``. Returns the card (also stored in the ONNX
    metadata and as ``<out>.json``).
    """
    from ..data import load_face_data
    from ..face.evaluation import evaluate_face
    from ..face.recognizer import face_input
    from ..runtime import load_onnx

    out = Path(out)
    net, state = load_checkpoint(checkpoint)
    if flip_tta:
        net = FlipAverage(net).eval()
    cfg = state["config"]
    calibration = None
    if temperature == "auto":
        calibration = fit_face_temperature(net, cfg)
        temperature = calibration["temperature"]
    if temperature is not None and float(temperature) != 1.0:
        if not float(temperature) > 0:
            raise DataError(f"temperature must be positive, not {temperature}")
        net = Tempered(net, float(temperature)).eval()
    card = dict(state["card"])
    card.update({
        "name": name or cfg["name"],
        "architecture": {"arch": cfg["model"]["arch"], "options": cfg["model"]["options"]},
        "training": {"config": cfg, "epochs_run": state["epoch"], "best_val_acc_torch": state["best"],
                     "weights": "EMA" if state.get("ema") is not None else "raw"},
        "data_terms": DATA_TERMS.get(cfg["data"]["labels"], ""),
        "format": "int8 static QDQ (per-channel)" if int8 else "float32",
        "flip_tta_in_graph": flip_tta,
        "temperature": float(temperature or 1.0),
        "reproduce": command,
    })
    meta = {"task": "face", "labels": card["labels"], "input": card["input"], "card": card}

    rng = np.random.default_rng(0)
    calib_source = calibration_data or cfg["data"]["path"]
    train = load_face_data(calib_source).split(cfg["data"]["train_usage"])
    sample = train.images[rng.choice(len(train), size=min(1024, len(train)), replace=False)]
    x = face_input(sample)

    with tempfile.TemporaryDirectory() as tmpdir:
        fp32 = Path(tmpdir) / "fp32.onnx" if int8 else out
        export_onnx(net, torch.from_numpy(x[:2]), fp32, meta)
        card["torch_onnx_max_abs_diff"] = parity(net, fp32, x[:256])
        if card["torch_onnx_max_abs_diff"] > 1e-3:
            raise RuntimeError(f"torch and ONNX disagree by {card['torch_onnx_max_abs_diff']:.2e}")
        if int8:
            half = len(x) // 2  # calibrate on one half, measure the int8 error on the other
            quantize_int8(fp32, out, x[:half], meta)
            card["int8_vs_fp32_max_abs_diff"] = _max_diff(fp32, out, x[half:])

    if eval_data:
        data = load_face_data(eval_data).split(eval_usage)
        rep = evaluate_face(load_onnx(out, threads=2), data)
        rep_tta = evaluate_face(load_onnx(out, threads=2), data, tta=True)
        card["evaluation"] = {
            "split_role": f"{eval_usage} also selected the best epoch during training"
            if eval_usage in cfg["data"].get("val_usage", []) else f"{eval_usage} was not used in training or for any choice",
            "data": f"{eval_data} ({eval_usage}, {rep.n} images)",
            "accuracy": rep.accuracy, "macro_f1": rep.macro_f1, "per_class": rep.per_class(),
            "confusion_matrix": rep.confusion.tolist(),
            "accuracy_with_flip_tta": rep_tta.accuracy if not flip_tta else rep.accuracy,
        }
        if calibration is not None:
            calibration.update(calibration_on(out, data, card["temperature"], eval_usage))
    if calibration is not None:
        card["calibration"] = calibration
    write_card(out, meta, card, card_markdown)
    return card


def fit_face_temperature(net: torch.nn.Module, cfg: dict) -> dict:
    """The temperature minimising the NLL on the recipe's validation rows, and the ECE there."""
    from .calibration import ece, fit_temperature
    from .face import images_to_input, load_training_data
    from .loop import predict_logits

    recipe = config_from_dict(cfg)
    _, val = load_training_data(recipe)
    logits = predict_logits(net, torch.from_numpy(val.images), images_to_input, recipe.optim).numpy()
    t = fit_temperature(logits, val.labels)
    return {"temperature": t, "fitted_on": f"validation rows ({len(val)} images)",
            "val_ece_before": ece(softmax(logits), val.labels), "val_ece_after": ece(softmax(logits / t), val.labels)}


def calibration_on(model: Path, data, temperature: float, usage: str) -> dict:
    """ECE (15 bins) of the exported model on ``data`` with and without its temperature, and the diagram."""
    from ..face.recognizer import face_input
    from ..runtime import load_onnx
    from .calibration import ece, reliability_diagram

    session = load_onnx(model, threads=2)
    logits = np.concatenate([session.run(face_input(data.images[i:i + 512])) for i in range(0, len(data), 512)])
    before, after = softmax(logits * temperature), softmax(logits)
    png = model.with_suffix(".reliability.png")
    reliability_diagram({"T = 1": (before, data.labels), f"T = {temperature:.2f}": (after, data.labels)}, png,
                        title=f"{model.stem} on {usage}")
    return {"test_usage": usage, "test_ece_before": ece(before, data.labels), "test_ece_after": ece(after, data.labels),
            "reliability_diagram": png.name}


def write_card(out: Path, meta: dict, card: dict, render) -> None:
    """Store the card in the ONNX metadata and beside the model as .json and as
    ``render(card)`` Markdown (rendered last: it quotes the final file size)."""
    card["size_bytes"] = out.stat().st_size
    meta["card"] = card
    _set_metadata(out, meta)
    with atomic_path(out.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(card, indent=2) + "\n")
    with atomic_path(out.with_suffix(".md")) as tmp:
        tmp.write_text(render(card))


def export_voice_model(checkpoint: str | Path, out: str | Path, **options) -> dict:
    """Export a voice checkpoint (ONNX + metadata + card); see voice_export.py."""
    from .voice_export import export_voice_model as export

    return export(checkpoint, out, **options)


def per_class_table(per_class: dict) -> list[str]:
    """Markdown rows of a report's per-class metrics, for the model cards."""
    return ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|",
            *[f"| {k} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
              for k, m in per_class.items()]]


def card_markdown(card: dict) -> str:
    """The model card for people: what it is, what it learned from, how well it does."""
    arch = card["architecture"]
    train = card["training"]
    lines = [
        f"# Model card: {card['name']}", "",
        f"- Task: {card['task']} emotion, {len(card['labels'])} classes: {', '.join(card['labels'])}",
        f"- Input: {card['input']['size'][0]}x{card['input']['size'][1]} grayscale face crop, "
        f"{card['input']['scale']}, normalisation {card['input']['normalisation']}",
        f"- Network: {arch['arch']} {json.dumps(arch['options'])}, {card['parameters'] / 1e6:.2f} M parameters, "
        f"{card['format']}, {card['size_bytes'] / 1e6:.1f} MB"
        + (", flip averaging in the graph" if card.get("flip_tta_in_graph") else ""),
        f"- Trained by moodlens from `{train['config']['data']['path']}` ({', '.join(train['config']['data']['train_usage'])}: "
        f"{card['data']['train_count']} images) for {train['config']['optim']['epochs']} epochs; the weights of epoch "
        f"{train['epochs_run']} ({train['weights']}) were the best on {validation_text(train['config']['data'])} "
        f"({card['data']['val_count']} images)",
        f"- Data terms: {card['data_terms']}",
        f"- torch vs ONNX max |logit difference|: {card['torch_onnx_max_abs_diff']:.1e}"
        + (f"; int8 vs fp32: {card['int8_vs_fp32_max_abs_diff']:.1e}" if "int8_vs_fp32_max_abs_diff" in card else ""),
        "",
    ]
    ev = card.get("evaluation")
    if ev:
        lines += [
            f"## Evaluation: {ev['data']}", "",
            f"Accuracy **{ev['accuracy']:.4f}**, macro F1 {ev['macro_f1']:.4f}, "
            f"with flip test-time augmentation {ev['accuracy_with_flip_tta']:.4f}. {ev.get('split_role', '')}.", "",
            *per_class_table(ev["per_class"]), "",
        ]
    cal = card.get("calibration")
    if cal:
        lines += [
            "## Calibration", "",
            f"The graph divides its logits by a temperature of {cal['temperature']:.3f}, fitted on the "
            f"{cal['fitted_on']} by minimising the negative log-likelihood. Expected calibration error (15 bins):", "",
            "| data | before | after |", "|---|---|---|",
            f"| {cal['fitted_on']} | {cal['val_ece_before']:.4f} | {cal['val_ece_after']:.4f} |",
            *([f"| {cal['test_usage']} (not used for the fit) | {cal['test_ece_before']:.4f} | "
               f"{cal['test_ece_after']:.4f} |", "", f"![reliability diagram]({cal['reliability_diagram']})"]
              if "test_usage" in cal else []), "",
        ]
    lines += [
        "## Reproduce", "",
        "```bash",
        card.get("trained_with") or "moodlens train face --config configs/face_resnet.yaml",
        card.get("reproduce") or "moodlens export face runs/face_resnet/best.pt --out model.onnx",
        "```", "",
        "## Limits", "",
        "FER-2013 faces are mostly frontal, low-resolution web images; labels are noisy (human agreement "
        "is about 65%). Accuracy is lowest for fear, sad and disgust (see the table). Faces unlike the "
        "training data (profile views, occlusion, children, under-represented groups) are recognised less "
        "reliably. Do not use the model to make decisions about people.", "",
    ]
    return "\n".join(lines)


def validation_text(data: dict) -> str:
    if data.get("val_usage"):
        return ", ".join(data["val_usage"])
    return (f"a validation split of {data['val_split']:.0%} of {', '.join(data['train_usage'])}, stratified by class, "
            f"seed {data['val_seed']} (held out of training)")


def _max_diff(a: Path, b: Path, x: np.ndarray) -> float:
    import onnxruntime as ort

    outs = []
    for p in (a, b):
        s = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        outs.append(s.run(None, {s.get_inputs()[0].name: x})[0])
    return float(np.abs(outs[0] - outs[1]).max())
