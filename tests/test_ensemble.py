"""Exported face models averaged in one ONNX graph."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from moodlens.cli import main  # noqa: E402
from moodlens.errors import DataError  # noqa: E402
from moodlens.labels import FER_EMOTIONS  # noqa: E402
from moodlens.runtime import load_onnx  # noqa: E402
from moodlens.train.ensemble import build_ensemble, check_average  # noqa: E402
from moodlens.train.export import export_onnx  # noqa: E402
from moodlens.train.nets import build_net  # noqa: E402

META = {"task": "face", "labels": list(FER_EMOTIONS), "input": {"size": [48, 48], "channels": 1}}


def tiny(path, seed: int, **meta):
    torch.manual_seed(seed)
    net = build_net("resnet", 7, widths=(8, 8, 8, 8), blocks=(1, 1, 1, 1), stem=8).eval()
    export_onnx(net, torch.rand(2, 1, 48, 48), path, {**META, "card": {"name": f"tiny-{seed}"}, **meta})
    return path


def test_ensemble_averages_member_probabilities(tmp_path, capsys):
    members = [tiny(tmp_path / f"m{i}.onnx", i) for i in range(3)]
    out = tmp_path / "ensemble.onnx"
    assert main(["ensemble", *map(str, members), "--out", str(out), "--weights", "2", "1", "1"]) == 0
    assert "tiny-0 0.500, tiny-1 0.250, tiny-2 0.250" in capsys.readouterr().out
    x = np.random.default_rng(0).random((6, 1, 48, 48), dtype=np.float32)
    assert check_average(out, members, x, weights=[2, 1, 1]) < 1e-5
    model = load_onnx(out, task="face")
    assert model.labels == FER_EMOTIONS and model.meta["card"]["ensemble"][0]["weight"] == 0.5


def test_members_that_do_not_fit_together_are_refused(tmp_path):
    a = tiny(tmp_path / "a.onnx", 0)
    with pytest.raises(DataError, match="at least two"):
        build_ensemble([a], tmp_path / "e.onnx")
    with pytest.raises(DataError, match="one non-negative weight per member"):
        build_ensemble([a, a], tmp_path / "e.onnx", weights=[1.0])
    other = tiny(tmp_path / "other.onnx", 1, labels=list(reversed(FER_EMOTIONS)))
    with pytest.raises(DataError, match="other.onnx: its labels differ"):
        build_ensemble([a, other], tmp_path / "e.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"junk")
    with pytest.raises(DataError, match="junk.onnx: not a loadable ONNX model"):
        build_ensemble([a, tmp_path / "junk.onnx"], tmp_path / "e.onnx")
    assert not (tmp_path / "e.onnx").exists()


def tiny_voice(path, seed: int):
    from moodlens.train.voice_nets import build_voice_net

    torch.manual_seed(seed)
    net = build_voice_net("cnn", 8, 40, widths=[4, 4, 4, 4]).eval()
    meta = {"task": "voice", "labels": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "calm"],
            "input": {"features": {"kind": "logmel", "n_mels": 40}}, "card": {"name": f"voice-{seed}"}}
    export_onnx(net, torch.rand(2, 1, 40, 101), path, meta)
    return path


def test_voice_models_average_too_but_not_with_face_models(tmp_path):
    members = [tiny_voice(tmp_path / f"v{i}.onnx", i) for i in range(2)]
    card = build_ensemble(members, tmp_path / "voice.onnx")
    assert card["task"] == "voice" and card["name"] == "voice-ensemble"
    x = np.random.default_rng(0).random((3, 1, 40, 101), dtype=np.float32)
    assert check_average(tmp_path / "voice.onnx", members, x) < 1e-5
    with pytest.raises(DataError, match="face.onnx: a face model, but .*v0.onnx is a voice model"):
        build_ensemble([members[0], tiny(tmp_path / "face.onnx", 0)], tmp_path / "mixed.onnx")
