"""Teachers -> cached soft labels -> a distilled student; bad caches and teachers refused."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from moodlens.cli import main  # noqa: E402
from moodlens.errors import DataError  # noqa: E402
from moodlens.train.distill import distill_loss, load_soft_labels, load_teacher, teacher_targets  # noqa: E402
from moodlens.labels import FER_EMOTIONS  # noqa: E402

from conftest import write_fer_csv  # noqa: E402

TINY = ["model.options={widths: [8, 8, 8, 8], blocks: [1, 1, 1, 1], stem: 8}", "optim.batch_size=16",
        "optim.warmup_epochs=0", "optim.threads=1", "optim.epochs=1", "data.test_usage=[]"]


def _sets(*items):
    return sum((["--set", s] for s in (*TINY, *items)), [])


@pytest.fixture()
def teacher(tmp_path):
    data = tmp_path / "fer.csv"
    write_fer_csv(data, n=64, usages=("Training",))
    assert main(["train", "face", *_sets(f"data.path={data}", f"out_dir={tmp_path / 'teacher'}")]) == 0
    return data, tmp_path / "teacher" / "best.pt"


def test_student_learns_from_cached_teacher_labels(teacher, tmp_path, capsys):
    data, ckpt = teacher
    student = tmp_path / "student"
    args = _sets(f"data.path={data}", f"out_dir={student}", "distill.alpha=0.7")
    assert main(["distill", "face", "--teachers", str(ckpt), "--cache-only", *args]) == 0
    assert not (student / "best.pt").exists()  # the cache alone
    assert main(["distill", "face", "--teachers", str(ckpt), str(ckpt), *args]) == 0
    cache = student / "soft_labels.npz"
    logits = load_soft_labels(cache, rows=64, labels=FER_EMOTIONS)
    assert logits.shape == (2, 64, 2, 7)
    state = torch.load(student / "best.pt", weights_only=False)
    assert state["config"]["distill"]["soft_labels"] == str(cache)
    # a second student reuses the cache: no teacher needed
    again = _sets(f"data.path={data}", f"out_dir={tmp_path / 'again'}", f"distill.soft_labels={cache}")
    assert main(["distill", "face", *again]) == 0
    assert "teacher 1/" not in capsys.readouterr().out.split("wrote")[-1]


def test_teachers_are_added_to_a_cache_whose_checkpoints_are_gone(teacher, tmp_path, capsys):
    data, ckpt = teacher
    args = _sets(f"data.path={data}", f"out_dir={tmp_path / 's'}")
    assert main(["distill", "face", "--teachers", str(ckpt), "--cache-only", *args]) == 0
    cache = tmp_path / "s" / "soft_labels.npz"
    first = load_soft_labels(cache, rows=64, labels=FER_EMOTIONS)
    assert main(["train", "face", *_sets(f"data.path={data}", f"out_dir={tmp_path / 'b'}", "optim.seed=7")]) == 0
    moved = tmp_path / "teacher_b.pt"
    (tmp_path / "b" / "best.pt").rename(moved)
    ckpt.unlink()  # teacher A's checkpoint is gone; its logits live on in the cache
    assert main(["distill", "face", "--teachers", str(moved), "--cache-only", "--append", *args]) == 0
    both = load_soft_labels(cache, rows=64, labels=FER_EMOTIONS)
    assert both.shape == (2, 64, 2, 7)
    assert np.array_equal(both[0], first[0]) and not np.array_equal(both[1], first[0])
    with np.load(cache) as z:
        assert [str(t) for t in z["teachers"]] == ["teacher/best.pt", f"{tmp_path.name}/teacher_b.pt"]
    capsys.readouterr()
    assert main(["distill", "face", "--teachers", str(moved), "--cache-only", "--append", *args]) == 2
    assert "teacher_b.pt: this checkpoint is already in" in capsys.readouterr().err
    other = tmp_path / "other.csv"
    write_fer_csv(other, n=40, usages=("Training",))
    assert main(["distill", "face", "--teachers", str(moved), "--cache-only", "--append",
                 *_sets(f"data.path={other}", f"distill.soft_labels={cache}")]) == 2
    assert "64 rows, but the recipe's training data has 40" in capsys.readouterr().err
    assert main(["distill", "face", "--cache-only", "--append", *args]) == 2
    assert "--append adds --teachers" in capsys.readouterr().err


def test_a_cache_for_other_data_is_refused(teacher, tmp_path, capsys):
    data, ckpt = teacher
    assert main(["distill", "face", "--teachers", str(ckpt), *_sets(f"data.path={data}", f"out_dir={tmp_path / 's'}")]) == 0
    other = tmp_path / "other.csv"
    write_fer_csv(other, n=40, usages=("Training",))
    cache = tmp_path / "s" / "soft_labels.npz"
    assert main(["train", "face", *_sets(f"data.path={other}", f"out_dir={tmp_path / 'x'}",
                                         f"distill.soft_labels={cache}")]) == 2
    assert "64 rows, but the recipe's training data has 40" in capsys.readouterr().err


def test_wrong_teachers_are_refused(teacher, tmp_path):
    _, ckpt = teacher
    with pytest.raises(DataError, match="predicts angry.*but the student's data has"):
        load_teacher(ckpt, ("happy", "sad"))
    state = torch.load(ckpt, weights_only=False)
    state["card"]["task"] = "voice"
    torch.save(state, tmp_path / "voice.pt")
    with pytest.raises(DataError, match="a voice model; a face teacher is needed"):
        load_teacher(tmp_path / "voice.pt", FER_EMOTIONS)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="junk.pt: not a moodlens training checkpoint"):
        load_teacher(tmp_path / "junk.pt", FER_EMOTIONS)


def test_nothing_to_distil_from_is_a_clear_error(tmp_path, capsys):
    assert main(["distill", "face", *_sets(f"out_dir={tmp_path}")]) == 2
    assert "nothing to distil from" in capsys.readouterr().err


def test_distill_loss_mixes_hard_and_soft_terms():
    logits = torch.randn(5, 7)
    hard = torch.tensor(1.5)
    target = (logits / 2).softmax(1)
    assert distill_loss(logits, hard, target, alpha=0.0, temperature=2.0) == pytest.approx(1.5)
    assert distill_loss(logits, hard, target, alpha=1.0, temperature=2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert distill_loss(logits, hard, target.roll(1, 1), alpha=1.0, temperature=2.0) > 0
    probs = teacher_targets(np.random.default_rng(0).normal(size=(2, 3, 2, 7)).astype(np.float32), 2.0)
    assert probs.shape == (3, 7) and torch.allclose(probs.sum(1), torch.ones(3))


def _ferplus_csv(path, usages, seed=0):
    rng = np.random.default_rng(seed)
    header = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    rows = [f"{u},fer{i:07d}.png," + ",".join(map(str, rng.multinomial(10, [0.1] * 10))) for i, u in enumerate(usages)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_ferplus_votes_as_a_soft_target(tmp_path):
    from moodlens.data import load_fer2013
    from moodlens.train.config import load_config
    from moodlens.train.face import load_training_data

    data = tmp_path / "fer.csv"
    write_fer_csv(data, n=40)
    usages = load_fer2013(data).usage
    votes = _ferplus_csv(tmp_path / "fer2013new.csv", usages)
    cfg = load_config(None, [*TINY, f"data.path={data}", "distill.ferplus_weight=1.0", f"distill.ferplus_path={votes}"],
                      task="face")
    train, _ = load_training_data(cfg)
    assert train.soft.shape == (len(train), 7) and np.allclose(train.soft.sum(1), 1, atol=1e-5)
    assert main(["train", "face", *_sets(f"data.path={data}", f"out_dir={tmp_path / 'run'}",
                                         f"distill.ferplus_path={votes}", "distill.ferplus_weight=0.5")]) == 0
    short = _ferplus_csv(tmp_path / "short.csv", usages[:-1])
    with pytest.raises(DataError, match="short.csv: its rows do not align"):
        load_training_data(load_config(None, [f"data.path={data}", "distill.ferplus_weight=0.5",
                                              f"distill.ferplus_path={short}"], task="face"))
