"""Training recipe -> checkpoints/logs -> resume -> ONNX export and parity."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from moodlens.cli import main  # noqa: E402
from moodlens.errors import DataError  # noqa: E402
from moodlens.runtime import load_onnx  # noqa: E402
from moodlens.train.augment import augment_images  # noqa: E402
from moodlens.train.config import AugmentConfig, load_config  # noqa: E402
from moodlens.train.export import load_checkpoint, parity  # noqa: E402
from moodlens.train.nets import build_net  # noqa: E402

from conftest import ROOT, write_fer_csv  # noqa: E402

TINY = ["model.options={widths: [8, 8, 8, 8], blocks: [1, 1, 1, 1], stem: 8}", "optim.batch_size=16",
        "optim.warmup_epochs=0", "optim.threads=1", "optim.lr=0.01"]


@pytest.fixture()
def recipe(tmp_path):
    data = tmp_path / "fer.csv"
    write_fer_csv(data, n=64)
    out = tmp_path / "run"
    return tmp_path, ["--set", f"data.path={data}", "--set", f"out_dir={out}", *sum((["--set", s] for s in TINY), [])]


def test_train_writes_checkpoints_logs_and_plot(recipe, capsys):
    tmp_path, args = recipe
    assert main(["train", "face", "--config", str(ROOT / "configs/face_resnet.yaml"), *args,
                 "--set", "optim.epochs=2"]) == 0
    out = tmp_path / "run"
    for name in ("best.pt", "last.pt", "history.csv", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    assert list((out / "tb").glob("events.out.tfevents.*"))
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "val_macro_f1", "lr"} <= set(rows[0])
    assert "epoch 2/2" in capsys.readouterr().out


def test_resume_continues_where_it_stopped(recipe):
    tmp_path, args = recipe
    assert main(["train", "face", *args, "--set", "optim.epochs=1"]) == 0
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert main(["train", "face", *args, "--set", "optim.epochs=3", "--resume"]) == 0
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert state["epoch"] == 3 and len(state["history"]) == 3
    assert state["history"][0] == first["history"][0]  # epoch 1 kept, not retrained


def test_interrupt_leaves_a_resumable_checkpoint(recipe, monkeypatch):
    from moodlens.train import loop

    tmp_path, args = recipe
    real_validate = loop.Trainer._validate
    calls = {"n": 0}

    def validate_then_interrupt(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_validate(self)

    monkeypatch.setattr(loop.Trainer, "_validate", validate_then_interrupt)
    assert main(["train", "face", *args, "--set", "optim.epochs=3"]) == 130
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["epoch"] == 1
    monkeypatch.setattr(loop.Trainer, "_validate", real_validate)
    assert main(["train", "face", *args, "--set", "optim.epochs=3", "--resume"]) == 0
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["epoch"] == 3


def test_early_stopping(recipe, capsys):
    tmp_path, args = recipe
    assert main(["train", "face", *args, "--set", "optim.epochs=30", "--set", "optim.patience=1",
                 "--set", "optim.lr=0.0"]) == 0
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert state["epoch"] < 30
    assert "early stopping" in capsys.readouterr().out


def test_unknown_config_key_is_rejected(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  epocs: 3\n")
    with pytest.raises(DataError, match="unknown key\\(s\\) epocs"):
        load_config(bad)
    with pytest.raises(DataError, match="expected int"):
        load_config(None, ["optim.epochs=many"])


def test_export_parity_metadata_and_int8(recipe, tmp_path, capsys):
    _, args = recipe
    assert main(["train", "face", *args, "--set", "optim.epochs=1"]) == 0
    ckpt = tmp_path / "run" / "best.pt"
    data = args[1].split("=", 1)[1]
    out = tmp_path / "exported" / "tiny.onnx"
    assert main(["export", "face", str(ckpt), "--out", str(out), "--eval-data", data,
                 "--calibration-data", data]) == 0
    model = load_onnx(out)
    assert model.task == "face" and len(model.labels) == 7
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["format"].startswith("int8")
    assert card["evaluation"]["data"].endswith("(PublicTest, 32 images)")
    assert set(card["evaluation"]["per_class"]) == set(model.labels)
    assert card["reproduce"].startswith("moodlens export face")
    md = out.with_suffix(".md").read_text()
    assert "# Model card" in md and "| angry |" in md and "## Reproduce" in md

    fp32 = tmp_path / "exported" / "tiny_fp32.onnx"
    assert main(["export", "face", str(ckpt), "--out", str(fp32), "--fp32", "--calibration-data", data]) == 0
    net, _ = load_checkpoint(ckpt)
    x = np.random.default_rng(1).random((8, 1, 48, 48), dtype=np.float32)
    assert parity(net, fp32, x) < 1e-4
    int8_logits = load_onnx(out).run(x)
    fp32_logits = load_onnx(fp32).run(x)
    assert np.abs(int8_logits - fp32_logits).max() < 0.5


def test_export_fits_a_temperature_on_validation_rows(recipe, tmp_path, capsys):
    _, args = recipe
    assert main(["train", "face", *args, "--set", "optim.epochs=1"]) == 0
    data = args[1].split("=", 1)[1]
    out = tmp_path / "calibrated.onnx"
    plain = tmp_path / "plain.onnx"
    common = ["--fp32", "--eval-data", data, "--calibration-data", data]
    assert main(["export", "face", str(tmp_path / "run" / "best.pt"), "--out", str(out), "--temperature", "auto",
                 *common]) == 0
    assert main(["export", "face", str(tmp_path / "run" / "best.pt"), "--out", str(plain), *common]) == 0
    cal = json.loads(out.with_suffix(".json").read_text())["calibration"]
    assert cal["fitted_on"].startswith("validation rows") and cal["test_usage"] == "PublicTest"
    assert cal["val_ece_after"] <= cal["val_ece_before"] + 1e-9  # the fit minimises NLL there, ECE follows
    assert out.with_suffix(".reliability.png").stat().st_size > 0
    assert "## Calibration" in out.with_suffix(".md").read_text()
    x = np.random.default_rng(2).random((4, 1, 48, 48), dtype=np.float32)  # the graph divides by T
    np.testing.assert_allclose(load_onnx(out).run(x) * cal["temperature"], load_onnx(plain).run(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(SystemExit):
        main(["export", "voice", str(tmp_path / "run" / "best.pt"), "--out", str(out), "--temperature", "x"])
    assert "expected a number or auto" in capsys.readouterr().err


@pytest.mark.parametrize("arch, options", [
    ("baseline", {}), ("resnet", {}), ("vgg", {"width": 0.25}), ("mobilenetv2", {"width": 0.5}),
])
def test_architectures_take_48x48_gray(arch, options):
    net = build_net(arch, 7, **options).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 1, 48, 48)).shape == (2, 7)


def test_baseline_is_the_writeups_layer_stack():
    net = build_net("baseline", 7)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    dense = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 128]
    assert [d.out_features for d in dense] == [1024, 7]
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == 3
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == 3


def test_pretrained_weights_transfer_from_a_local_file(tmp_path):
    from moodlens.train.nets import load_pretrained

    source = build_net("mobilenetv2", 10, width=0.5)  # other class count: head skipped
    path = tmp_path / "weights.pt"
    torch.save(source.state_dict(), path)
    target = build_net("mobilenetv2", 7, width=0.5)
    skipped = load_pretrained(target, str(path))
    assert skipped == ["head.3.bias", "head.3.weight"]
    assert torch.equal(target.features[0][0].weight, source.features[0][0].weight)


def test_augmentation_keeps_shape_range_and_changes_images():
    x = torch.rand(32, 1, 48, 48)
    y = augment_images(x, AugmentConfig(), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and 0 <= y.min() and y.max() <= 1
    assert (y - x).abs().mean() > 0.01
    off = AugmentConfig(hflip=0, rotate_deg=0, scale=(1, 1), shift=0, erase_p=0, brightness=0, contrast=0)
    assert torch.allclose(augment_images(x, off), x, atol=1e-5)
    flip = AugmentConfig(hflip=1, rotate_deg=0, scale=(1, 1), shift=0, erase_p=0, brightness=0, contrast=0)
    assert torch.allclose(augment_images(x, flip), x.flip(-1), atol=1e-5)
