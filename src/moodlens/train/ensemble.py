"""Several exported models of one task averaged in one ONNX graph.

``moodlens ensemble A.onnx B.onnx --out ensemble.onnx`` puts every
member's graph side by side behind one shared input, turns each member's logits
into probabilities, averages them (equal weights unless given), and returns the
log of the average: the runtime's softmax of that is the averaged probability,
so an ensemble file is used exactly like any other model (``--model PATH``).
One ONNX Runtime session runs all members; int8 members stay int8. Face and
voice models both work (all members of one task, labels and input settings).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from ..errors import DataError, ModelError
from ..io import atomic_path
from ..runtime import METADATA_KEY, read_metadata


def _member(path: Path):
    import onnx

    try:
        meta = read_metadata(path)
    except ModelError as exc:
        raise DataError(str(exc)) from exc
    if meta["task"] not in ("face", "voice"):
        raise DataError(f"{path}: a {meta['task']} model; an ensemble takes face or voice models")
    return onnx.load(str(path)), meta


def build_ensemble(members: list[str | Path], out: str | Path, weights: list[float] | None = None,
                   name: str | None = None) -> dict:
    """Write the ensemble graph with moodlens metadata; returns the metadata's card."""
    import onnx
    from onnx import TensorProto, compose, helper

    paths = [Path(m) for m in members]
    if len(paths) < 2:
        raise DataError("an ensemble needs at least two member models")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths) or min(weights) < 0 or sum(weights) <= 0:
        raise DataError(f"ensemble weights: one non-negative weight per member, not all zero (got {weights})")
    weights = [w / sum(weights) for w in weights]
    loaded = [_member(p) for p in paths]
    first_meta = loaded[0][1]
    for path, (_, meta) in zip(paths[1:], loaded[1:]):
        if meta["task"] != first_meta["task"]:
            raise DataError(f"{path}: a {meta['task']} model, but {paths[0]} is a {first_meta['task']} model; "
                            f"an ensemble's members share one task")
        for key in ("labels", "input"):
            if meta[key] != first_meta[key]:
                raise DataError(f"{path}: its {key} differ from {paths[0]}'s ({meta[key]} vs {first_meta[key]})")
    opsets: dict[str, int] = {}
    for path, (model, _) in zip(paths, loaded):
        for op in model.opset_import:
            if opsets.setdefault(op.domain, op.version) != op.version:
                raise DataError(f"{path}: opset {op.version} of domain {op.domain or 'ai.onnx'!r} differs from the "
                                f"other members' ({opsets[op.domain]}); export them with the same torch")

    task = first_meta["task"]
    name = name or f"{task}-ensemble"
    shared_input = loaded[0][0].graph.input[0]
    nodes, inits, scaled = [], [], []
    for i, ((model, _), weight) in enumerate(zip(loaded, weights)):
        model = compose.add_prefix(model, prefix=f"m{i}_")
        graph = model.graph
        inner_input, inner_output = graph.input[0].name, graph.output[0].name
        nodes.append(helper.make_node("Identity", [shared_input.name], [inner_input]))
        nodes.extend(graph.node)
        inits.extend(graph.initializer)
        inits.append(helper.make_tensor(f"m{i}_weight", TensorProto.FLOAT, [], [weight]))
        nodes.append(helper.make_node("Softmax", [inner_output], [f"m{i}_probs"], axis=1))
        nodes.append(helper.make_node("Mul", [f"m{i}_probs", f"m{i}_weight"], [f"m{i}_scaled"]))
        scaled.append(f"m{i}_scaled")
    nodes.append(helper.make_node("Sum", scaled, ["probs"]))
    inits.append(helper.make_tensor("tiny", TensorProto.FLOAT, [], [1e-12]))
    nodes.append(helper.make_node("Add", ["probs", "tiny"], ["probs_safe"]))  # log(0) would be -inf
    nodes.append(helper.make_node("Log", ["probs_safe"], ["logits"]))
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(first_meta["labels"])])
    graph = helper.make_graph(nodes, name, [shared_input], [output], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()])
    model.ir_version = loaded[0][0].ir_version
    card = {
        "name": name, "task": task, "labels": first_meta["labels"], "input": first_meta["input"],
        "ensemble": [{"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(), "weight": w,
                      "name": meta.get("card", {}).get("name", p.stem)} for p, (_, meta), w in zip(paths, loaded, weights)],
        "output": "log of the weighted mean of the members' probabilities (softmax of it = that mean)",
    }
    meta = {"task": task, "labels": first_meta["labels"], "input": first_meta["input"], "card": card}
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    onnx.checker.check_model(model)
    out = Path(out)
    with atomic_path(out) as tmp:
        onnx.save(model, str(tmp))
    return card


def check_average(ensemble: str | Path, members: list[str | Path], x: np.ndarray, weights=None) -> float:
    """Max |difference| between the ensemble's probabilities and the members' averaged by hand."""
    from ..runtime import load_onnx

    weights = np.ones(len(members)) if weights is None else np.asarray(weights, float)
    weights = weights / weights.sum()
    by_hand = sum(w * load_onnx(m).probabilities(x) for w, m in zip(weights, members))
    return float(np.abs(load_onnx(ensemble).probabilities(x) - by_hand).max())
