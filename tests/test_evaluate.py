"""Metrics against scikit-learn, and the `moodlens evaluate` forms users rely on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from moodlens.cli import main
from moodlens.evaluate import report


def test_metrics_match_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    true = rng.integers(0, 5, 500)
    pred = np.where(rng.random(500) < 0.6, true, rng.integers(0, 5, 500))
    rep = report(true, pred, ("a", "b", "c", "d", "e"))
    assert rep.accuracy == pytest.approx(sk.accuracy_score(true, pred))
    assert rep.macro_f1 == pytest.approx(sk.f1_score(true, pred, average="macro"))
    assert rep.uar == pytest.approx(sk.balanced_accuracy_score(true, pred))
    p, r, f, s = sk.precision_recall_fscore_support(true, pred)
    per = rep.per_class()
    assert [per[k]["precision"] for k in "abcde"] == pytest.approx(p)
    assert [per[k]["recall"] for k in "abcde"] == pytest.approx(r)
    assert [per[k]["support"] for k in "abcde"] == list(s)
    assert np.array_equal(rep.confusion, sk.confusion_matrix(true, pred))


def test_classes_absent_from_data_do_not_drag_macro_scores():
    rep = report(np.array([0, 0, 1]), np.array([0, 0, 1]), ("a", "b", "c"))
    assert rep.macro_f1 == 1.0 and rep.uar == 1.0


def test_evaluate_json_form(fer_csv, face_model, capsys):
    code = main(["evaluate", "face", "--model", face_model, "--data", str(fer_csv), "--usage", "PublicTest", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 14
    assert 0 <= result["accuracy"] <= 1 and 0 <= result["macro_f1"] <= 1
    assert set(result["per_class"]) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
    assert sum(map(sum, result["confusion_matrix"])) == 14


def test_evaluate_report_files_and_tta(tmp_path, fer_csv, face_model, capsys):
    pytest.importorskip("matplotlib")
    code = main(["evaluate", "face", "--model", face_model, "--data", str(fer_csv), "--tta", "--out-dir", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "precision  recall  f1-score  support" in out and "flip TTA" in out
    assert json.loads((tmp_path / "report.json").read_text())["n"] == 28
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_bad_data_is_a_clear_error(tmp_path, face_model, capsys):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["evaluate", "face", "--model", face_model, "--data", str(bad)]) == 2
    assert "missing column(s) emotion, pixels" in capsys.readouterr().err
    assert main(["evaluate", "face", "--model", face_model, "--data", str(bad.with_name("none.csv"))]) == 2
