"""Data-parallel training under torchrun (gloo, loopback).

The torchrun tests start real processes and are marked ``distributed``: the
default run skips them, `.ci/run` runs them (`pytest -m distributed`).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from moodlens.errors import DataError  # noqa: E402
from moodlens.train import distributed  # noqa: E402
from moodlens.train.distributed import World  # noqa: E402

from conftest import write_fer_csv  # noqa: E402

# A net without BatchNorm or dropout, no augmentation, fp32: the only difference
# left between 2 ranks x batch B and 1 rank x batch 2B is the order of float sums. A constant
# learning rate, so that stopping at 2 epochs and resuming to 3 is the same as running 3.
EXACT = ["model.arch=baseline", "model.options={dropout: 0.0, dense_dropout: 0.0}", "optim.bf16=false",
         "optim.channels_last=false", "optim.ema_decay=0", "optim.warmup_epochs=0", "optim.optimizer=sgd",
         "optim.lr=0.05", "optim.schedule=constant", "optim.threads=1", "data.val_split=0.25", "data.test_usage=[]",
         "augment={hflip: 0, rotate_deg: 0, scale: [1, 1], shift: 0, erase_p: 0, brightness: 0, contrast: 0}"]


def test_epoch_order_deals_one_permutation_out_to_the_ranks():
    one = distributed.epoch_order(20, epoch=3, seed=7, world=World())
    shards = [distributed.epoch_order(20, 3, 7, World(rank=r, size=2, local_size=2)) for r in range(2)]
    assert sorted(one.tolist()) == list(range(20))
    batch = 4  # per rank; the one-process run takes 8
    for i in range(20 // 8):
        together = torch.cat([s[i * batch:(i + 1) * batch] for s in shards])
        assert sorted(together.tolist()) == sorted(one[i * 8:(i + 1) * 8].tolist())
    assert not torch.equal(one, distributed.epoch_order(20, 4, 7, World()))  # reshuffled every epoch


def test_more_processes_than_items_is_a_clear_error():
    with pytest.raises(DataError, match="3 training items cannot be shared by 4 processes"):
        distributed.check_shardable(3, World(rank=0, size=4, local_size=4))


def test_without_torchrun_nothing_is_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    world = distributed.current()
    assert (world.rank, world.size, world.is_main, world.distributed) == (0, 1, True, False)


def _train(tmp_path, out, nproc: int, batch: int, epochs: int, resume: bool = False):
    data = tmp_path / "fer.csv"
    if not data.exists():
        write_fer_csv(data, n=96, usages=("Training",))
    sets = [f"data.path={data}", f"out_dir={out}", f"optim.batch_size={batch}", f"optim.epochs={epochs}", *EXACT]
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"]
                if nproc > 1 else [sys.executable])
    cmd = [*launcher, "-m", "moodlens", "train", "face", *sum((["--set", s] for s in sets), [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd + (["--resume"] if resume else []), capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout, [float(r["train_loss"]) for r in csv.DictReader(open(out / "history.csv"))]


@pytest.mark.distributed
def test_two_ranks_follow_one_process_with_twice_the_batch_and_resume(tmp_path):
    _, single = _train(tmp_path, tmp_path / "one", nproc=1, batch=16, epochs=3)
    out = tmp_path / "two"
    log, first = _train(tmp_path, out, nproc=2, batch=8, epochs=2)
    assert log.count("epoch 2/2") == 1  # rank 0 alone reports
    assert sorted(p.name for p in out.glob("*.pt")) == ["best.pt", "last.pt"]  # one writer
    state = torch.load(out / "last.pt", weights_only=False)
    assert not any(k.startswith("module.") for k in state["model"])  # the plain net, as one process saves it
    log, resumed = _train(tmp_path, out, nproc=2, batch=8, epochs=3, resume=True)
    assert "resumed from" in log and resumed[:2] == first
    assert resumed == pytest.approx(single, rel=1e-3, abs=1e-4)
    assert single[-1] < single[0]  # it learns, so the comparison means something


@pytest.mark.distributed
def test_voice_trains_under_torchrun_with_one_feature_cache(tmp_path):
    from voicekit import ravdess_corpus

    corpus = ravdess_corpus(tmp_path / "ravdess", actors=(1, 2, 3, 4), seconds=0.5)
    out = tmp_path / "voice"
    sets = [f"data.train=[{{corpus: ravdess, path: {corpus}, speakers: ['01-03']}}]",
            f"data.val=[{{corpus: ravdess, path: {corpus}, speakers: ['04']}}]", f"out_dir={out}",
            "model.options={widths: [4, 4, 4, 4]}", "optim.epochs=2", "optim.batch_size=4", "features.clip_seconds=0.5"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "moodlens",
           "train", "voice", *sum((["--set", s] for s in sets), [])]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("epoch 2/2") == 1
    assert len(list(out.glob("features-*.npz"))) == 2  # training and validation clips, built by rank 0 alone
    assert sorted(p.name for p in out.glob("*.pt")) == ["best.pt", "last.pt"]


@pytest.mark.distributed
def test_more_ranks_than_items_is_said_once(tmp_path):
    data = tmp_path / "two.csv"
    write_fer_csv(data, n=4)  # 2 Training rows
    sets = [f"data.path={data}", f"out_dir={tmp_path / 'x'}", "data.val_split=0", "data.val_usage=[PublicTest]",
            "data.test_usage=[]", "model.options={widths: [8, 8, 8, 8], blocks: [1, 1, 1, 1], stem: 8}"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=3", "-m", "moodlens",
           "train", "face", *sum((["--set", s] for s in sets), [])]
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: 2 training items cannot be shared by 3 processes (--nproc-per-node x --nnodes); "
                      "use fewer processes or more data"]
