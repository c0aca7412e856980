"""`moodlens tune`: Optuna studies over tiny recipes, resumed, interrupted and refused."""

from __future__ import annotations

import csv
import json
import re
import sqlite3

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("optuna")

from moodlens.cli import main  # noqa: E402
from moodlens.errors import DataError  # noqa: E402
from moodlens.train.config import load_config  # noqa: E402
from moodlens.train.tune import load_space  # noqa: E402

from conftest import ROOT, write_fer_csv  # noqa: E402
from voicekit import ravdess_corpus  # noqa: E402

TINY = ["model.options={widths: [8, 8, 8, 8], blocks: [1, 1, 1, 1], stem: 8}", "optim.batch_size=16",
        "optim.warmup_epochs=0", "optim.threads=1", "data.val_split=0.25"]
FACE_SPACE = """\
task: face
epochs: 2
search:
  optim.lr: {type: float, low: 1.0e-3, high: 3.0e-2, log: true}
  model.options.dropout: {type: float, low: 0.0, high: 0.5}
  augment.scale: {type: categorical, choices: [[0.9, 1.1], [0.8, 1.2]]}
  augment.mixup_alpha: {type: categorical, choices: [0.0, 0.4]}
"""


def _sets(items):
    return sum((["--set", s] for s in items), [])


@pytest.fixture()
def face(tmp_path):
    data = tmp_path / "fer.csv"
    write_fer_csv(data, n=64)
    space = tmp_path / "space.yaml"
    space.write_text(FACE_SPACE)
    study = tmp_path / "tune" / "face.db"
    args = ["tune", "face", "--config", str(ROOT / "configs" / "face_teacher_a.yaml"), "--space", str(space),
            "--study", str(study), *_sets([f"data.path={data}", f"out_dir={tmp_path / 'run'}", *TINY])]
    return tmp_path, study, args


def test_face_study_writes_table_and_a_recipe_that_trains(face, capsys):
    tmp_path, study, args = face
    assert main(args + ["--trials", "3"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["finished"] == 3 and not summary["interrupted"]
    assert re.search(r"trial\s+state\s+val_acc\s+epochs\s+seconds\s+optim.lr", out)  # the printed table
    rows = list(csv.DictReader((tmp_path / "tune" / "face-trials.csv").read_text().splitlines()))
    assert [r["trial"] for r in rows] == ["0", "1", "2"] and {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    assert json.loads(rows[0]["augment.scale"]) in ([0.9, 1.1], [0.8, 1.2])
    # trial 0 is the base recipe's own values, so the table shows what tuning gained over it
    assert "\n0 base" in out
    assert (float(rows[0]["optim.lr"]), float(rows[0]["model.options.dropout"])) == (0.002, 0.2)
    assert (json.loads(rows[0]["augment.scale"]), float(rows[0]["augment.mixup_alpha"])) == ([0.9, 1.1], 0.0)
    assert sqlite3.connect(study).execute("select count(*) from trials").fetchone()[0] == 3

    best = tmp_path / "tune" / "face-best.yaml"
    assert summary["best_recipe"] == str(best)
    text = best.read_text()
    assert "# Chosen by `moodlens tune face`" in text and "2-epoch proxy run" in text
    cfg = load_config(best, task="face")
    chosen = summary["best"]["values"]
    assert cfg.optim.lr == chosen["optim.lr"] and cfg.augment.scale == tuple(chosen["augment.scale"])
    assert cfg.model.options["dropout"] == chosen["model.options.dropout"]
    base = load_config(ROOT / "configs" / "face_teacher_a.yaml", task="face")
    assert cfg.optim.epochs == base.optim.epochs  # the full schedule, not the proxy's
    assert cfg.data.test_usage == base.data.test_usage and cfg.name == "face-teacher-a-tuned"
    assert cfg.out_dir == str(tmp_path / "run") + "_tuned"
    assert main(["train", "face", "--config", str(best), "--set", "optim.epochs=1"]) == 0
    assert (tmp_path / "run_tuned" / "best.pt").exists()


def test_resume_adds_trials_up_to_the_total_and_refuses_another_recipe(face, capsys):
    tmp_path, study, args = face
    assert main(args + ["--trials", "2"]) == 0
    first = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(args + ["--trials", "3"]) == 0  # one more, not three
    out = capsys.readouterr().out
    assert "2 finished trial(s); 1 to go" in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["finished"] == 3
    rows = list(csv.DictReader((tmp_path / "tune" / "face-trials.csv").read_text().splitlines()))
    assert len(rows) == 3 and rows[2]["optim.lr"] not in (rows[0]["optim.lr"], rows[1]["optim.lr"])  # new draws
    assert first["best"]["trial"] in (0, 1)
    assert main(args + ["--trials", "3"]) == 0  # done already: only the table and the recipe again
    assert "0 to go" in capsys.readouterr().out

    assert main(args + ["--trials", "4", "--set", "optim.weight_decay=0.01"]) == 2
    err = capsys.readouterr().err
    assert str(study) in err and "optim.weight_decay" in err and "another --study" in err
    assert main(args + ["--trials", "4", "--epochs", "3"]) == 2  # another proxy budget: not comparable
    assert "optim.epochs" in capsys.readouterr().err
    assert main(args + ["--trials", "4", "--metric", "val_uar"]) == 2
    assert "maximises val_acc, not val_uar" in capsys.readouterr().err


def test_the_base_recipe_trial_is_never_pruned(face, monkeypatch, capsys):
    import optuna

    from moodlens.train import tune as tune_module

    class PruneEverything(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    _, _, args = face
    monkeypatch.setattr(tune_module, "_pruner", lambda name, epochs: PruneEverything())
    assert main(args + ["--trials", "3"]) == 0
    rows = list(csv.DictReader((face[0] / "tune" / "face-trials.csv").read_text().splitlines()))
    assert [r["state"] for r in rows] == ["COMPLETE", "PRUNED", "PRUNED"]
    assert rows[0]["epochs"] == "2" and rows[1]["epochs"] == "1"


def test_ctrl_c_keeps_the_finished_trials_and_writes_the_best(face, monkeypatch, capsys):
    from moodlens.train import loop

    tmp_path, _, args = face
    real = loop.Trainer._validate
    calls = {"n": 0}

    def validate_then_interrupt(self):
        calls["n"] += 1
        if calls["n"] == 4:  # in the second trial (two epochs each)
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(loop.Trainer, "_validate", validate_then_interrupt)
    assert main(args + ["--trials", "5", "--pruner", "none"]) == 130
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["interrupted"] and summary["finished"] == 1 and summary["best"]["trial"] == 0
    assert "run the same command again to continue" in out
    assert (tmp_path / "tune" / "face-best.yaml").exists()
    monkeypatch.setattr(loop.Trainer, "_validate", real)
    assert main(args + ["--trials", "2", "--pruner", "none"]) == 0  # the failed trial does not count
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["finished"] == 2


def test_voice_study_and_a_face_recipe_refused_on_it(tmp_path, capsys):
    corpus = ravdess_corpus(tmp_path / "ravdess", actors=(1, 2, 3), seconds=0.5)
    space = tmp_path / "voice.yaml"
    space.write_text("""\
task: voice
search:
  model.arch: {type: categorical, choices: [cnn, crnn]}
  model.options.pool: {type: categorical, choices: [meanmax, attention], when: {model.arch: cnn}}
  model.options.hidden: {type: categorical, choices: [4, 8], when: {model.arch: crnn}}
  model.options.deltas: {type: categorical, choices: [false, true]}
  features.n_mels: {type: categorical, choices: [32, 40]}
  augment.time_masks: {type: int, low: 0, high: 2}
""")
    study = tmp_path / "voice.db"
    sets = [f"data.train=[{{corpus: ravdess, path: {corpus}, speakers: ['01-02']}}]",
            f"data.val=[{{corpus: ravdess, path: {corpus}, speakers: ['03']}}]", f"out_dir={tmp_path / 'run'}",
            "model.options={widths: [4, 4, 4, 4]}", "optim.batch_size=8", "optim.threads=1",
            "features.clip_seconds=0.5"]
    assert main(["tune", "voice", "--config", str(ROOT / "configs" / "voice_cnn.yaml"), "--space", str(space),
                 "--study", str(study), "--trials", "3", "--epochs", "1", *_sets(sets)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["finished"] == 3 and "val_uar" in summary["best"]  # voice's default metric
    cfg = load_config(summary["best_recipe"], task="voice")
    chosen = summary["best"]["values"]
    assert cfg.model.arch == chosen["model.arch"] and cfg.features.n_mels == chosen["features.n_mels"]
    assert ("model.options.pool" in chosen) == (cfg.model.arch == "cnn")  # drawn only `when` it applies
    assert cfg.optim.epochs == 60 and cfg.data.val[0].speakers == ["03"]

    data = tmp_path / "fer.csv"
    write_fer_csv(data)
    assert main(["tune", "face", "--space", str(ROOT / "configs" / "tune_face.yaml"), "--study", str(study),
                 "--set", f"data.path={data}"]) == 2
    err = capsys.readouterr().err
    assert str(study) in err and "a tuning study of voice recipes, not face" in err


def test_bad_search_spaces_and_recipes_get_clear_errors(tmp_path, capsys):
    def space(text):
        path = tmp_path / "space.yaml"
        path.write_text(text)
        return path

    def tune_error(path, *extra):
        assert main(["tune", "face", "--space", str(path), "--study", str(tmp_path / "s.db"), *extra]) == 2
        return capsys.readouterr().err

    err = tune_error(space("task: face\nsearch:\n  optim.lrate: {type: float, low: 0.1, high: 0.5}\n"))
    assert "unknown recipe key 'optim.lrate'; optim has epochs, batch_size" in err
    err = tune_error(space("task: face\nsearch:\n  optim.lr.x: {type: float, low: 0.1, high: 0.5}\n"))
    assert "optim.lr is a value, not a section" in err
    err = tune_error(space("task: face\nsearch:\n  optim.lr: {type: float, low: 0.5, high: 0.1}\n"))
    assert "search.optim.lr: low (0.5) must be below high (0.1)" in err
    err = tune_error(space("task: face\nsearch:\n  optim.lr: {type: float, low: 0.1, hihg: 0.5}\n"))
    assert "unknown key(s) hihg for type float" in err
    err = tune_error(space("task: face\nsearch:\n  optim.epochs: {type: float, low: 1, high: 5}\n"))
    assert "search.optim.epochs: the value 1.0 does not fit the recipe" in err and "expected int" in err
    err = tune_error(space("task: face\nsearch:\n  model.arch: {type: categorical, choices: [resnet]}\n"
                           "  optim.lr: {type: float, low: 0.1, high: 0.5, when: {optim.lr_max: 1}}\n"))
    assert "search.optim.lr.when: unknown recipe key 'optim.lr_max'" in err
    err = tune_error(space("task: voice\nsearch:\n  optim.lr: {type: float, low: 0.1, high: 0.5}\n"))
    assert "a search space for voice recipes, but `moodlens tune face` was asked" in err
    err = tune_error(space("task: face\nsampler: tpe\nsearch:\n  optim.lr: {type: float, low: 0.1, high: 0.5}\n"))
    assert "unknown key(s) sampler" in err
    ok = space("task: face\nsearch:\n  optim.lr: {type: float, low: 0.1, high: 0.5}\n")
    err = tune_error(ok, "--config", str(ROOT / "configs" / "face_resnet.yaml"))  # validates on PublicTest
    assert "validates on PublicTest" in err and "data.val_split=0.1" in err
    (tmp_path / "junk.db").write_text("not a database")
    assert main(["tune", "face", "--space", str(ok), "--study", str(tmp_path / "junk.db")]) == 2
    assert "not a tuning study file" in capsys.readouterr().err
    with pytest.raises(DataError, match="choices: expected a non-empty list"):
        load_space(space("task: face\nsearch:\n  optim.loss: {type: categorical, choices: []}\n"))


def test_shipped_search_spaces_fit_the_shipped_recipes():
    from moodlens.train.tune import check_space, full_recipe

    for task, recipe in (("face", "face_teacher_a.yaml"), ("voice", "voice_cnn.yaml"), ("voice", "voice_cnn_cv.yaml")):
        space = load_space(ROOT / "configs" / f"tune_{task}.yaml")
        check_space(space, full_recipe(load_config(ROOT / "configs" / recipe, task=task).to_dict()), task)
    # the CRNN recipe's GRU options do not suit the CNN that the voice space also tries: said before any trial
    crnn = full_recipe(load_config(ROOT / "configs" / "voice_crnn.yaml", task="voice").to_dict())
    with pytest.raises(DataError, match="search.model.arch: the value cnn does not fit the recipe.*'rnn'"):
        check_space(load_space(ROOT / "configs" / "tune_voice.yaml"), crnn, "voice")


def test_importances_name_the_key_that_moves_the_metric():
    import optuna

    from moodlens.train.tune import param_importances

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    objective = lambda t: t.suggest_float("optim.lr", 0, 1) + 0.01 * t.suggest_float("model.options.dropout", 0, 1)  # noqa: E731
    study.optimize(objective, n_trials=4)
    assert param_importances(study) == {}  # too few trials to split the variance
    study.optimize(objective, n_trials=16)
    shares = param_importances(study)
    assert set(shares) == {"optim.lr", "model.options.dropout"}
    assert list(shares)[0] == "optim.lr" and shares["optim.lr"] > 0.9
