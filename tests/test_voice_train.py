"""Voice training: recipes, augmentation, nets, a one-epoch run, export with
torch-vs-ONNX parity, and `moodlens evaluate voice --json` on its output."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from moodlens.cli import main  # noqa: E402
from moodlens.errors import DataError  # noqa: E402
from moodlens.runtime import load_onnx  # noqa: E402
from moodlens.train.config import VoiceAugmentConfig, load_config  # noqa: E402
from moodlens.train.export import load_checkpoint, parity  # noqa: E402
from moodlens.train.voice import build_sets  # noqa: E402
from moodlens.train.voice_augment import augment_voice, band_position, warp  # noqa: E402
from moodlens.train.voice_export import Tempered  # noqa: E402
from moodlens.train.voice_nets import build_voice_net  # noqa: E402
from moodlens.voice.audio import FeatureSettings, features, fit_frames, silence_column  # noqa: E402

from conftest import ROOT  # noqa: E402
from voicekit import RAVDESS, SR, ravdess_corpus, tiny_voice_onnx, touch, voiced, write  # noqa: E402,F401

FLOOR = -60.0
OFF = dict(gain_db=0.0, noise_p=0.0, speed_p=0.0, pitch_p=0.0, time_masks=0, freq_masks=0)


@pytest.mark.parametrize("name", ["voice_cnn.yaml", "voice_cnn_cv.yaml", "voice_crnn.yaml"])
def test_shipped_recipes_validate(name):
    cfg = load_config(ROOT / "configs" / name, task="voice")
    assert cfg.task == "voice" and cfg.data.labels == ["angry", "disgust", "fear", "happy", "sad", "surprise",
                                                      "neutral", "calm"]
    assert [c.corpus for c in cfg.data.train] == ["ravdess", "savee", "emodb"]
    assert cfg.data.train[0].speakers == ["01-16"] and cfg.data.val[0].speakers == ["17-20"]
    assert cfg.features == FeatureSettings()


def test_recipe_errors(tmp_path):
    with pytest.raises(DataError, match=r"data.train\[0\]: unknown key\(s\) pth"):
        load_config(None, ["data.train=[{corpus: savee, pth: x}]"], task="voice")
    with pytest.raises(DataError, match="a face recipe, but `moodlens train voice`"):
        load_config(ROOT / "configs" / "face_resnet.yaml", task="voice")
    partial = load_config(None, ["optim.epochs=3"], task="voice")
    assert partial.optim.lr == 0.002 and partial.model.arch == "cnn"  # a section keeps the voice defaults
    ravdess_corpus(tmp_path / "r", actors=(1, 2), seconds=0.5)
    leak = load_config(None, [f"data.train=[{{corpus: ravdess, path: {tmp_path / 'r'}}}]",
                              f"data.val=[{{corpus: ravdess, path: {tmp_path / 'r'}, speakers: ['02']}}]"], task="voice")
    with pytest.raises(DataError, match="speakers in both training and validation data: ravdess:02"):
        build_sets(leak)


def test_labels_outside_the_model_are_dropped_or_relabelled(tmp_path):
    touch(tmp_path / "e", ["03a01Fa.wav", "03a01La.wav", "08a01Wa.wav", "08a01Lb.wav"])
    base = [f"data.train=[{{corpus: emodb, path: {tmp_path / 'e'}, speakers: ['03']}}]",
            f"data.val=[{{corpus: emodb, path: {tmp_path / 'e'}, speakers: ['08']}}]"]
    train, val, notes = build_sets(load_config(None, base, task="voice"))
    assert [i.label for i in train + val] == ["happy", "angry"]
    assert notes["dropped_labels"] == {"emodb:boredom": 2}
    train, val, _ = build_sets(load_config(None, base + ["data.relabel={boredom: calm}"], task="voice"))
    assert sorted(i.label for i in train + val) == ["angry", "calm", "calm", "happy"]


def _batch(n=6):
    s = FeatureSettings()
    clips = [features(voiced(1.0 + 0.3 * i, f0=120 + 30 * i), s) for i in range(n)]
    x = np.stack([fit_frames(c, s.clip_frames, pad=silence_column(s)) for c in clips])[:, None]
    return torch.from_numpy(x), s


def test_augmentations_keep_padding_silent_and_change_the_clip():
    x, s = _batch()
    pad = (x == FLOOR).all(dim=2, keepdim=True)
    for name, cfg in {"gain": VoiceAugmentConfig(**{**OFF, "gain_db": 6}),
                      "noise": VoiceAugmentConfig(**{**OFF, "noise_p": 1.0}),
                      "all": VoiceAugmentConfig(**{**OFF, "gain_db": 6, "noise_p": 1.0})}.items():
        y = augment_voice(x, cfg, s, torch.Generator().manual_seed(0))
        assert y.shape == x.shape and torch.isfinite(y).all() and y.min() >= FLOOR - 1e-4, name
        assert (y[pad.expand_as(y)] == FLOOR).all(), name  # padding is digital silence at inference too
        assert (y - x).abs().max() > 1, name
    y = augment_voice(x, VoiceAugmentConfig(**{**OFF, "time_masks": 2, "freq_masks": 2}), s, torch.Generator())
    assert ((y != x).sum(dim=(1, 2, 3)) > 0).all()
    assert torch.equal(augment_voice(x, VoiceAugmentConfig(**OFF), s, torch.Generator()), x)


def test_reverberation_leaves_a_tail_decaying_at_the_rooms_rt60():
    s = FeatureSettings()
    rng = np.random.default_rng(0)
    quiet = 3e-3 * rng.standard_normal(2 * SR)  # a room's noise floor keeps the pauses real frames
    tone = np.concatenate([np.zeros(SR // 2), 0.1 * np.sin(2 * np.pi * 500 * np.arange(SR // 2) / SR), np.zeros(SR)])
    clip = features((tone + quiet).astype(np.float32), s)
    x = torch.from_numpy(np.concatenate([np.full((64, 50), FLOOR, np.float32), clip], axis=1))[None, None]
    cfg = VoiceAugmentConfig(**{**OFF, "reverb_p": 1.0, "reverb_rt60": (0.5, 0.5), "reverb_drr_db": (0.0, 0.0)})
    y = augment_voice(x, cfg, s, torch.Generator())
    band = int(x[0, 0, :, 125].argmax())
    end = 50 + 100  # the tone stops at 1 s of the clip
    slope = (y[0, 0, band, end + 5] - y[0, 0, band, end + 25]) / 0.2  # dB per second, well above the floor
    assert slope == pytest.approx(60 / 0.5, rel=0.1)  # -60 dB in 0.5 s
    assert float(y[0, 0, band, 125] - x[0, 0, band, 125]) == pytest.approx(3.0, abs=0.3)  # DRR 0 dB doubles a steady tone
    assert torch.equal(y[..., :50], x[..., :50])  # padding stays digital silence
    assert torch.equal(augment_voice(x, VoiceAugmentConfig(**{**OFF, "reverb_p": 0.0}), s, torch.Generator()), x)


@pytest.mark.parametrize("factor", [2.0, 0.5, 1.2, 0.9])
def test_frequency_warp_moves_energy_like_resampling(factor):
    """A 500 Hz tone warped by 2 lands where a 1 kHz tone is (an octave up),
    by 0.5 where 250 Hz is, by 1.2 where 600 Hz is: as resampling would move it."""
    s = FeatureSettings()
    t = np.arange(3 * SR) / SR

    def tone(hz):
        return features((0.1 * np.sin(2 * np.pi * hz * t)).astype(np.float32), s)

    x = torch.from_numpy(tone(500))[None, None]
    y = warp(x, FLOOR, torch.ones(1), band_position(s, torch.tensor([factor])))
    assert abs(int(y[0, 0, :, 150].argmax()) - int(tone(500 * factor)[:, 150].argmax())) <= 1


def test_speed_perturbation_shortens_and_raises():
    s = FeatureSettings()
    burst = np.concatenate([np.zeros(SR), 0.1 * np.sin(2 * np.pi * 500 * np.arange(SR) / SR), np.zeros(SR)])
    x = torch.from_numpy(features(burst.astype(np.float32), s))[None, None]
    cfg = VoiceAugmentConfig(**{**OFF, "speed_p": 1.0, "speed": (1.25, 1.25)})
    y = augment_voice(x, cfg, s, torch.Generator())
    loud = lambda z: int((z[0, 0].amax(dim=0) > -20).sum())  # noqa: E731
    assert abs(loud(y) - loud(x) / 1.25) <= 3  # 1 s of tone lasts 0.8 s
    peak = lambda z: int(z[0, 0, :, 150].argmax())  # noqa: E731
    want = int(features((0.1 * np.sin(2 * np.pi * 625 * np.arange(SR) / SR)).astype(np.float32), s)[:, 50].argmax())
    assert abs(peak(y) - want) <= 1


@pytest.mark.parametrize("arch, options", [("cnn", {}), ("cnn", {"pool": "attention", "utterance_norm": True}),
                                           ("crnn", {}), ("crnn", {"rnn": "lstm", "hidden": 16}),
                                           ("cnn", {"deltas": True}), ("crnn", {"deltas": True, "utterance_norm": True})])
def test_nets_take_feature_windows(arch, options):
    net = build_voice_net(arch, 8, 64, **options).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, 64, 301)).shape == (2, 8)
        assert net(torch.randn(1, 1, 64, 101)).shape == (1, 8)
    with pytest.raises(ValueError, match="unknown voice architecture"):
        build_voice_net("transformer", 8, 64)


def test_deltas_are_librosas_and_export_with_parity(tmp_path):
    from moodlens.train.export import export_onnx
    from moodlens.train.voice_nets import Deltas

    librosa = pytest.importorskip("librosa")
    x = np.random.default_rng(0).normal(size=(1, 1, 8, 40)).astype(np.float32)
    d = Deltas()(torch.from_numpy(x)).numpy()
    assert d.shape == (1, 3, 8, 40) and np.array_equal(d[0, 0], x[0, 0])
    np.testing.assert_allclose(d[0, 1], librosa.feature.delta(x[0, 0], width=5, mode="nearest"), atol=1e-5)
    net = build_voice_net("cnn", 8, 64, widths=(4, 4, 4, 4), deltas=True).eval()
    path = tmp_path / "deltas.onnx"
    export_onnx(net, torch.randn(2, 1, 64, 101) * 10 - 30, path, {"task": "voice", "labels": [], "input": {}})
    assert parity(net, path, np.random.default_rng(1).uniform(-60, 20, (3, 1, 64, 101)).astype(np.float32)) < 1e-4


def _prosody_batch(n=3, t=301):
    """Log-mels plus a voiced pitch contour (semitones) with unvoiced gaps."""
    s = FeatureSettings(prosody=True)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, s.n_features, t, generator=g) * 40 - 50
    voicing = torch.rand(n, 1, t, generator=g) * (torch.arange(t) % 50 < 30)
    x[:, :, 64], x[:, :, 65] = (10 + torch.randn(n, 1, t, generator=g)) * (voicing > 0), voicing
    return x, s


def test_pitch_shift_and_speed_move_the_pitch_rows_like_the_spectrum():
    x, s = _prosody_batch()
    up = augment_voice(x, VoiceAugmentConfig(**{**OFF, "pitch_p": 1.0, "pitch_semitones": 2.0}), s, torch.Generator())
    voiced = x[:, 0, 65] > 0
    for i in range(3):  # every voiced frame of a clip moves by the same amount, within +-2 semitones
        shift = up[i, 0, 64][voiced[i]] - x[i, 0, 64][voiced[i]]
        assert shift.abs().max() <= 2.0 + 1e-4 and float(shift.max() - shift.min()) < 1e-4
    assert torch.equal(up[:, :, 65], x[:, :, 65]) and (up[:, 0, 64][~voiced] == 0).all()
    fast = augment_voice(x, VoiceAugmentConfig(**{**OFF, "speed_p": 1.0, "speed": (1.25, 1.25)}), s, torch.Generator())
    voiced_fast = fast[:, 0, 65] > 0  # frames move in time, so compare the mean voiced pitch: 1.25x = +3.9 st
    assert abs(float(fast[:, 0, 64][voiced_fast].mean() - x[:, 0, 64][voiced].mean()) - 12 * np.log2(1.25)) < 0.3
    assert voiced_fast.sum() < voiced.sum()  # and the clip is shorter
    masked = augment_voice(x, VoiceAugmentConfig(**{**OFF, "time_masks": 2, "freq_masks": 2}), s, torch.Generator())
    assert torch.equal(masked[:, :, 64:], x[:, :, 64:])  # SpecAugment masks only the spectrum


def test_prosody_branch_reads_the_pitch_rows_and_exports_with_parity(tmp_path):
    from moodlens.train.export import export_onnx

    x, s = _prosody_batch()
    net = build_voice_net("cnn", 8, s.n_features, prosody=True, widths=(4, 4, 4, 8), prosody_channels=8).eval()
    with torch.no_grad():
        base = net(x)
        higher = x.clone()
        higher[:, 0, 64] += 5.0 * (x[:, 0, 65] > 0)
        assert (net(higher) - base).abs().max() > 1e-4  # the pitch rows reach the logits
    movement_only = build_voice_net("cnn", 8, s.n_features, prosody=True, widths=(4, 4, 4, 8), prosody_channels=8,
                                    prosody_absolute=False).eval()
    with torch.no_grad():  # a speaker 5 semitones higher, same melody: the same answer
        assert torch.allclose(movement_only(higher), movement_only(x), atol=1e-5)
    path = tmp_path / "prosody.onnx"
    export_onnx(net, x, path, {"task": "voice", "labels": [], "input": {}})
    assert parity(net, path, _prosody_batch(2)[0].numpy()) < 1e-4
    with pytest.raises(ValueError, match="needs model.arch cnn"):
        build_voice_net("crnn", 8, s.n_features, prosody=True)


def test_utterance_norm_ignores_padding():
    from moodlens.train.voice_nets import UtteranceNorm

    x = torch.full((1, 1, 3, 6), FLOOR)
    x[0, 0, :, 1:4] = torch.tensor([[-10.0, -20.0, -30.0]] * 3)
    y = UtteranceNorm(FLOOR)(x)
    assert torch.allclose(y[0, 0, :, 1:4], torch.tensor([[10.0, 0.0, -10.0]] * 3)) and (y[0, 0, :, [0, 4, 5]] == 0).all()
    with pytest.raises(ValueError, match="pool must be"):
        build_voice_net("cnn", 8, 64, pool="max")


@pytest.mark.slow  # the GRU makes the dynamo export slow (tens of seconds on 2 busy cores)
def test_crnn_exports_with_parity_at_any_batch_size(tmp_path):
    from moodlens.train.export import export_onnx

    net = build_voice_net("crnn", 8, 64, widths=(4, 4, 4, 8), hidden=8).eval()
    path = tmp_path / "crnn.onnx"
    export_onnx(net, torch.randn(2, 1, 64, 301) * 10 - 30, path, {"task": "voice", "labels": [], "input": {}})
    for n in (1, 3):  # one window, or several from a long clip
        x = np.random.default_rng(n).uniform(-60, 20, (n, 1, 64, 301)).astype(np.float32)
        assert parity(net, path, x) < 1e-4


def test_train_one_epoch_export_parity_and_evaluate_json(tmp_path, capsys):
    corpus = ravdess_corpus(tmp_path / "ravdess", actors=(1, 2, 3))
    write(corpus / "Actor_03" / "03-01-01-01-02-01-03.wav", np.zeros(SR, np.float32))  # silent: skipped, reported
    run = tmp_path / "run"
    args = ["train", "voice", "--config", str(ROOT / "configs" / "voice_cnn.yaml"),
            "--set", f"data.train=[{{corpus: ravdess, path: {corpus}, speakers: ['01-02']}}]",
            "--set", f"data.val=[{{corpus: ravdess, path: {corpus}, speakers: ['03']}}]",
            "--set", f"out_dir={run}", "--set", "model.options={widths: [4, 4, 4, 4]}", "--set", "optim.epochs=1",
            "--set", "optim.batch_size=8", "--set", "optim.threads=1", "--set", "features.clip_seconds=1.0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "training 16 (ravdess 16 clips/2 speakers); validation 9" in out and "silent" in out
    for name in ("best.pt", "last.pt", "history.csv", "curves.png"):
        assert (run / name).stat().st_size > 0
    assert len(list(run.glob("features-*.npz"))) == 2
    assert main(args + ["--set", "optim.epochs=2", "--resume"]) == 0  # continues at epoch 2, reusing the cache
    out = capsys.readouterr().out
    assert "using cached features" in out and "resumed from" in out and "epoch 2/2" in out
    assert torch.load(run / "last.pt", weights_only=False)["epoch"] == 2

    onnx_path = tmp_path / "voice.onnx"
    assert main(["export", "voice", str(run / "best.pt"), "--out", str(onnx_path)]) == 0
    model = load_onnx(onnx_path, task="voice")
    assert model.labels[-1] == "calm" and model.meta["input"]["features"]["clip_seconds"] == 1.0
    card = json.loads(onnx_path.with_suffix(".json").read_text())
    assert card["torch_onnx_max_abs_diff"] < 1e-4 and card["evaluation"]["n"] == 8
    assert card["evaluation"]["failed"][0]["error"].endswith("dBFS)")  # the silent file, named
    assert "## Evaluation" in onnx_path.with_suffix(".md").read_text()
    net, _ = load_checkpoint(run / "best.pt")
    x = np.random.default_rng(0).uniform(-60, 20, (4, 1, 64, 101)).astype(np.float32)
    t = card["temperature"]  # the recipe's: the graph returns logits / t
    assert t == load_config(ROOT / "configs" / "voice_cnn.yaml", task="voice").temperature
    assert parity(Tempered(net, t), onnx_path, x) < 1e-4
    tempered = tmp_path / "tempered.onnx"  # --temperature overrides the recipe's; same predictions
    assert main(["export", "voice", str(run / "best.pt"), "--out", str(tempered), "--no-eval", "--temperature", "2"]) == 0
    assert json.loads(tempered.with_suffix(".json").read_text())["temperature"] == 2.0
    np.testing.assert_allclose(load_onnx(tempered, task="voice").run(x) * 2, model.run(x) * t, rtol=1e-4, atol=1e-4)

    capsys.readouterr()
    code = main(["evaluate", "voice", "--model", str(onnx_path), "--data", str(corpus), "--corpus", "ravdess", "--json",
                 "--out-dir", str(tmp_path / "report")])
    report = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "report" / "report.json").read_text())["n"] == 24
    assert (tmp_path / "report" / "confusion.png").stat().st_size > 0
    assert code == 1  # one file failed; the others were scored
    assert report["n"] == 24 and {"accuracy", "uar", "n", "per_class", "confusion_matrix"} <= set(report)
    assert set(report["per_class"]) == set(model.labels) and 0 <= report["uar"] <= 1
    assert len(report["failed"]) == 1 and len(report["speakers"]) == 3


def test_evaluate_on_shared_ravdess_held_out_actor(tiny_voice_onnx, capsys):
    if not RAVDESS.exists():
        pytest.skip(f"shared data not present: {RAVDESS}")
    code = main(["evaluate", "voice", "--model", str(tiny_voice_onnx), "--data", str(RAVDESS), "--corpus", "ravdess",
                 "--speakers", "07", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["n"] == 59 and report["speakers"] == ["ravdess:07"]  # duplicate take dropped
    assert len(report["duplicates_dropped"]) == 1


def test_evaluate_needs_a_corpus_and_names_an_empty_folder(tmp_path, tiny_voice_onnx, capsys):
    assert main(["evaluate", "voice", "--model", str(tiny_voice_onnx), "--data", str(tmp_path)]) == 2
    assert "needs --corpus" in capsys.readouterr().err
    touch(tmp_path, ["unrelated.wav"])
    assert main(["evaluate", "voice", "--model", str(tiny_voice_onnx), "--data", str(tmp_path), "--corpus", "tess"]) == 2
    assert f"{tmp_path}: not a TESS folder" in capsys.readouterr().err


# --- speaker-independent cross-validation, calibration -----------------------------

from moodlens.train.voice_cv import (check_speakers, cross_validate, ece, fit_temperature,  # noqa: E402
                                     main as cv_main, softmax, speaker_blocks)


def test_speaker_blocks_are_contiguous_in_natural_order():
    blocks = speaker_blocks([str(i) for i in range(16, 0, -1)], 4)
    assert blocks == [["1", "2", "3", "4"], ["5", "6", "7", "8"], ["9", "10", "11", "12"], ["13", "14", "15", "16"]]
    assert speaker_blocks(["03", "1", "2", "10", "DC"], 2) == [["1", "2", "3"], ["10", "DC"]]
    with pytest.raises(DataError, match="5 folds but only 4 speaker"):
        speaker_blocks(["1", "2", "3", "4"], 5)
    with pytest.raises(DataError, match="2 or more folds"):
        speaker_blocks(["1", "2"], 1)


def test_check_speakers_names_missing_ones(tmp_path):
    from moodlens.data.speech import load_speech_corpus

    items = load_speech_corpus("ravdess", ravdess_corpus(tmp_path / "r", actors=(1, 2), seconds=0.5))
    assert len(check_speakers(items, ["01-02"], "x")) == 16
    with pytest.raises(DataError, match=r"x: speaker\(s\) 3, 7 not in the data; present: 1, 2"):
        check_speakers(items, ["01-03", 7], "x")


def test_temperature_and_ece():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, (4000, 5))
    p = softmax(true_logits)
    y = np.array([rng.choice(5, p=row) for row in p])  # labels drawn from the model: calibrated at T = 1
    assert abs(fit_temperature(3 * true_logits, y) - 3) < 0.3  # over-confident by 3x: T ~ 3 undoes it
    assert ece(p, y) < 0.03 < ece(softmax(3 * true_logits), y)
    assert ece(np.array([[1.0, 0.0], [1.0, 0.0]]), np.array([0, 1])) == pytest.approx(0.5)


def test_cross_validation_runs_folds_and_reports(tmp_path, capsys):
    corpus = ravdess_corpus(tmp_path / "ravdess", actors=(1, 2, 3, 4), seconds=0.5)
    sets = [f"data.train=[{{corpus: ravdess, path: {corpus}}}]", "model.options={widths: [4, 4, 4, 4]}",
            "optim.epochs=1", "optim.batch_size=8", "optim.threads=1", "features.clip_seconds=0.5",
            "augment.mixup_alpha=0.4"]
    cfg = load_config(None, sets, task="voice")
    summary = cross_validate(cfg, folds=2, speakers=["01-04"], out_dir=tmp_path / "cv", cache_dir=tmp_path / "feat")
    assert [r["speakers"] for r in summary["folds_result"]] == [["1", "2"], ["3", "4"]]
    assert [r["n"] for r in summary["folds_result"]] == [16, 16]
    assert 0 <= summary["accuracy_mean"] <= 1 and summary["temperature"] > 0 and len(summary["pooled_recall"]) == 8
    assert json.loads((tmp_path / "cv" / "summary.json").read_text())["folds"] == 2
    assert "mean ± std" in capsys.readouterr().out
    assert len(list((tmp_path / "feat").glob("features-*.npz"))) == 1  # computed once, reused by a second run
    args = ["--out", str(tmp_path / "cv2"), "--cache", str(tmp_path / "feat")] + sum([["--set", s] for s in sets], [])
    assert cv_main(args + ["--folds", "5", "--speakers", "01-04"]) == 2
    assert "5 folds but only 4 speaker(s)" in capsys.readouterr().out
    assert cv_main(args + ["--speakers", "01-05"]) == 2
    assert "speaker(s) 5 not in the data" in capsys.readouterr().out
    assert cv_main(args + ["--corpus", "savee"]) == 2
    assert "data.train has no savee corpus" in capsys.readouterr().out


def test_cross_validation_in_two_processes_keeps_fold_models_and_scores_the_test(tmp_path, capsys):
    corpus = ravdess_corpus(tmp_path / "ravdess", actors=(1, 2, 3, 4, 5), seconds=0.5)
    sets = [f"data.train=[{{corpus: ravdess, path: {corpus}, speakers: ['01-04']}}]", "model.options={widths: [4, 4, 4, 4]}",
            f"data.val=[{{corpus: ravdess, path: {corpus}, speakers: ['05']}}]",
            "optim.epochs=2", "optim.batch_size=8", "optim.threads=1", "features.clip_seconds=0.5"]
    cfg = load_config(None, sets, task="voice")
    one = cross_validate(cfg, folds=2, speakers=["01-04"], out_dir=tmp_path / "one", cache_dir=tmp_path / "feat",
                         test=True)
    assert cv_main(["--folds", "2", "--speakers", "01-04", "--out", str(tmp_path / "two"), "--cache",
                    str(tmp_path / "feat"), "--jobs", "2", "--test"] + sum([["--set", s] for s in sets], [])) == 0
    two = json.loads((tmp_path / "two" / "summary.json").read_text())
    # the same folds trained in worker processes give the same models as in this one
    assert [r["val_acc_by_epoch"] for r in two["folds_result"]] == [r["val_acc_by_epoch"] for r in one["folds_result"]]
    assert two["test"]["ensemble_accuracy"] == one["test"]["ensemble_accuracy"]
    assert sorted(p.parent.name for p in (tmp_path / "two").glob("fold*/last.pt")) == ["fold1", "fold2"]
    test = two["test"]
    assert test["clips"] == 8 and len(test["members"]) == 2
    assert 0 <= test["ensemble_accuracy"] <= 1 and 0 <= test["ensemble_ece"] <= 1
    assert "test (8 clips)" in capsys.readouterr().out
    # the fold models export and average into one voice model whose card is evaluated on the test speakers
    members = []
    for k in (1, 2):
        members.append(str(tmp_path / f"fold{k}.onnx"))
        assert main(["export", "voice", str(tmp_path / "two" / f"fold{k}" / "last.pt"), "--out", members[-1]]) == 0
    assert main(["ensemble", *members, "--out", str(tmp_path / "voice_ens.onnx")]) == 0
    card = json.loads((tmp_path / "voice_ens.json").read_text())
    assert card["task"] == "voice" and card["evaluation"]["n"] == 8
    assert card["data"]["members_leave_out"] == [["ravdess:01", "ravdess:02"], ["ravdess:03", "ravdess:04"]]
    assert "2 x cnn" in (tmp_path / "voice_ens.md").read_text()
    member_card = json.loads((tmp_path / "fold1.json").read_text())
    assert member_card["trained_with"].startswith("python -m moodlens.train.voice_cv")  # the card's "Reproduce"
    # test speakers that are also cross-validated are refused before any training
    with pytest.raises(DataError, match="data.val speakers 5 are also cross-validated"):
        cross_validate(cfg, folds=2, speakers=["02-05"], out_dir=tmp_path / "bad", cache_dir=tmp_path / "feat", test=True)
    assert not (tmp_path / "bad").exists()


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, parent pid, ...]; None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def _running(pid: int) -> bool:
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z"  # a zombie has exited, its parent just has not reaped it


def _children(pid: int) -> set[int]:
    kids = {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}
    return {k for k in kids if (_proc_stat(k) or [None, None])[1] == str(pid)}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_stopping_the_parent_stops_the_fold_workers():
    """`kill PID` of a cross-validation with --jobs 2 must not leave its workers training on."""
    import os
    import signal
    import subprocess
    import sys
    import time

    code = "import time; from moodlens.train.voice_cv import in_processes; in_processes(time.sleep, [(60,), (60,)], 2)"
    parent = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 60
    workers: set[int] = set()
    while time.time() < deadline and len(workers) < 2:
        time.sleep(0.5)
        workers = {k for k in _children(parent.pid) if "spawn_main" in Path(f"/proc/{k}/cmdline").read_text()}
    assert len(workers) == 2, "the two workers never started"
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) != 0
    time.sleep(1)
    alive = [pid for pid in workers if _running(pid)]
    for pid in alive:
        os.kill(pid, signal.SIGKILL)
    assert not alive, "workers outlived their parent"
