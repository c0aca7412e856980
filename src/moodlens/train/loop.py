"""The training loop shared by face and voice models.

Why not PyTorch Lightning (which DESIGN.md suggests): on this 2-core CPU the
whole loop is ~250 lines, and owning it keeps bf16 autocast, channels_last,
batched in-process augmentation and the EMA model exactly where we want them,
with no second framework to install in CI. It still does what the callbacks
would: best/last checkpoints every epoch, resume (also after Ctrl+C), early
stopping, TensorBoard + CSV logs, a curve plot, fixed seeds, progress with ETA.
"""

from __future__ import annotations

import copy
import csv
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..io import atomic_path
from . import distributed
from .config import OptimConfig, TrainConfig
from .distill import distill_loss


@dataclass
class Split:
    x: torch.Tensor  # stored inputs (uint8 images or float features)
    y: torch.Tensor  # (N,) int64 class index
    soft: torch.Tensor | None = None  # (N, K) teachers' probabilities at the distillation temperature


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def class_weights(y: torch.Tensor, num_classes: int, mode: str) -> torch.Tensor | None:
    if mode == "none":
        return None
    counts = torch.bincount(y, minlength=num_classes).float().clamp(min=1)
    w = {"balanced": 1 / counts, "sqrt": counts.rsqrt()}.get(mode)
    if w is None:
        raise ValueError(f"class_weights must be none, balanced or sqrt, not {mode!r}")
    return w / w.mean()


def loss_fn(logits, y, cfg: OptimConfig, weights):
    if cfg.loss == "focal":
        logp = F.log_softmax(logits.float(), dim=1)
        ce = F.nll_loss(logp, y, weight=weights, reduction="none")
        pt = logp.gather(1, y[:, None]).squeeze(1).exp()
        return ((1 - pt) ** cfg.focal_gamma * ce).mean()
    return F.cross_entropy(logits.float(), y, weight=weights, label_smoothing=cfg.label_smoothing)


def lr_at(step: int, total: int, warmup: int, cfg: OptimConfig) -> float:
    if step < warmup:
        return cfg.lr * (0.04 + 0.96 * step / max(1, warmup))
    if cfg.schedule == "constant":
        return cfg.lr
    progress = (step - warmup) / max(1, total - warmup)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: nn.Module, cfg: OptimConfig):
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]  # BN and biases
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise ValueError(f"optimizer must be sgd or adamw, not {cfg.optimizer!r}")


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.dtype.is_floating_point:
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        else:
            e.copy_(p)


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, to_input: Callable, cfg: OptimConfig,
                   batch_size: int = 512) -> torch.Tensor:
    model.eval()
    out = []
    for i in range(0, len(x), batch_size):
        xb = to_input(x[i:i + batch_size])
        if cfg.channels_last and xb.ndim == 4:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            out.append(model(xb).float())
    return torch.cat(out)


def macro_f1(pred: np.ndarray, true: np.ndarray, k: int) -> float:
    cm = np.bincount(true * k + pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(float)
    prec = tp / np.maximum(cm.sum(0), 1)
    rec = tp / np.maximum(cm.sum(1), 1)
    f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-12)
    return float(f1.mean())


def uar(pred: np.ndarray, true: np.ndarray, k: int) -> float:
    """Unweighted average recall over the classes present in ``true``."""
    cm = np.bincount(true * k + pred, minlength=k * k).reshape(k, k)
    support = cm.sum(1)
    return float((np.diag(cm)[support > 0] / support[support > 0]).mean())


class Trainer:
    """Fit ``model`` on ``train``; select the best epoch on ``val``.

    ``to_input`` turns a stored batch into the float model input; ``augment``
    (training only) transforms that input. ``val_to_input`` (default
    ``to_input``) is used for validation: voice training crops windows at random
    for training and centred for validation.
    """

    def __init__(self, model: nn.Module, cfg: TrainConfig, train: Split, val: Split, num_classes: int,
                 to_input: Callable, augment: Callable | None, card: dict, val_to_input: Callable | None = None,
                 mixup: float = 0.0, save: bool = True, epoch_callback: Callable[[dict], None] | None = None):
        self.cfg, self.o = cfg, cfg.optim
        self.train, self.val, self.k = train, val, num_classes
        self.to_input, self.augment, self.card = to_input, augment, card
        self.val_to_input = val_to_input or to_input
        self.mixup = mixup  # Beta(a, a) mixing of inputs and targets per batch (Zhang et al. 2018); 0 = off
        self.epoch_callback = epoch_callback  # called with each epoch's row; may raise to stop (tune's pruning)
        # under torchrun: one process per shard of each epoch, and only rank 0 writes or prints
        self.world = distributed.current()
        distributed.check_shardable(len(train.y), self.world)
        self.save = save and self.world.is_main  # False: no checkpoints, logs or plots (cross-validation folds)
        self.out = Path(cfg.out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        if self.o.threads or self.world.distributed:
            torch.set_num_threads(self.o.threads or distributed.default_threads(self.world))
        self.gen = seed_everything(self.o.seed)
        if self.world.rank:  # each rank augments its shard with its own random draws
            self.gen.manual_seed(self.o.seed + 1_000_003 * self.world.rank)
        self.model = model.to(memory_format=torch.channels_last) if self.o.channels_last else model
        self.ema = copy.deepcopy(self.model) if self.o.ema_decay > 0 else None
        # DDP averages gradients over the ranks; self.model stays the plain net that is saved
        self.net = (torch.nn.parallel.DistributedDataParallel(self.model) if self.world.distributed
                    else self.model)
        self.opt = make_optimizer(self.model, self.o)
        self.weights = class_weights(train.y, num_classes, self.o.class_weights)
        self.epoch, self.best, self.stale, self.history = 0, -1.0, 0, []

    # --- checkpoints -------------------------------------------------------
    def _state(self) -> dict:
        return {
            "config": self.cfg.to_dict(), "card": self.card, "epoch": self.epoch,
            "model": self.model.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
            "optimizer": self.opt.state_dict(), "best": self.best, "stale": self.stale,
            "history": self.history, "rng": {"torch": torch.get_rng_state(), "gen": self.gen.get_state(),
                                             "numpy": np.random.get_state(), "python": random.getstate()},
        }

    def _save(self, name: str) -> None:
        with atomic_path(self.out / name) as tmp:
            torch.save(self._state(), tmp)

    def save_checkpoint(self, name: str) -> None:
        """Write the current state as ``out_dir/name`` even when ``save`` is off (cross-validation folds)."""
        if self.world.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            self._save(name)

    def resume(self, path: str | Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=False)
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["optimizer"])
        self.epoch, self.best, self.stale = state["epoch"], state["best"], state["stale"]
        self.history = state["history"]
        torch.set_rng_state(state["rng"]["torch"])
        self.gen.set_state(state["rng"]["gen"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        if self.world.rank:  # the checkpoint holds rank 0's draws; the others need their own again
            self.gen.manual_seed(self.o.seed + 1_000_003 * self.world.rank + self.epoch)
        self.say(f"resumed from {path} after epoch {self.epoch} (best val acc {self.best:.4f})")

    def say(self, message: str) -> None:
        if self.world.is_main:
            print(message, flush=True)

    # --- loop --------------------------------------------------------------
    def fit(self) -> dict:
        from tqdm import tqdm

        writer = _tensorboard(self.out) if self.save else None
        steps_per_epoch = math.ceil(math.ceil(len(self.train.y) / self.world.size) / self.o.batch_size)
        total, warmup = self.o.epochs * steps_per_epoch, int(self.o.warmup_epochs * steps_per_epoch)
        try:
            while self.epoch < self.o.epochs:
                t0 = time.time()
                train_loss, train_acc = self._train_epoch(steps_per_epoch, total, warmup, tqdm)
                val = self._validate()
                self.epoch += 1
                row = {"epoch": self.epoch, "lr": self.opt.param_groups[0]["lr"], "train_loss": train_loss,
                       "train_acc": train_acc, **val, "seconds": time.time() - t0}
                self.history.append(row)
                improved = val["val_acc"] > self.best
                if improved:
                    self.best, self.stale = val["val_acc"], 0
                else:
                    self.stale += 1
                if self.save:
                    self._save("last.pt")
                    if improved:
                        self._save("best.pt")
                    self._log(row, writer)
                # The median of the last few epochs: a run that was suspended (SIGSTOP, a sleeping laptop)
                # or slowed for a while by another job does not inflate the estimate for the rest.
                recent = sorted(r["seconds"] for r in self.history[-5:])
                per_epoch = recent[len(recent) // 2]
                eta = per_epoch * (self.o.epochs - self.epoch)
                self.say(f"epoch {self.epoch}/{self.o.epochs} train_loss {train_loss:.4f} train_acc {train_acc:.4f} "
                         f"val_loss {val['val_loss']:.4f} val_acc {val['val_acc']:.4f} "
                         f"val_macro_f1 {val['val_macro_f1']:.4f} val_uar {val['val_uar']:.4f}"
                         f"{' *best*' if improved else ''} ({row['seconds']:.0f}s, ETA {eta / 60:.1f} min)")
                if self.epoch_callback is not None:
                    self.epoch_callback(row)
                if self.o.patience and self.stale >= self.o.patience:
                    self.say(f"early stopping: no val improvement for {self.stale} epochs")
                    break
        except KeyboardInterrupt:
            self.say(f"\ninterrupted: checkpoints in {self.out} hold epoch {self.epoch}; "
                     f"continue with the same command plus --resume")
            raise
        finally:
            if writer is not None:
                writer.close()
        return {"best_val_acc": self.best, "epochs": self.epoch, "out_dir": str(self.out)}

    def _train_epoch(self, steps: int, total: int, warmup: int, tqdm) -> tuple[float, float]:
        self.net.train()
        perm = distributed.epoch_order(len(self.train.y), self.epoch, self.o.seed, self.world)
        loss_sum, correct, seen = 0.0, 0, 0
        bar = tqdm(range(steps), desc=f"epoch {self.epoch + 1}/{self.o.epochs}", leave=False, mininterval=2,
                   disable=None if self.world.is_main else True)  # None: a bar on a terminal, quiet in logs
        for i in bar:
            idx = perm[i * self.o.batch_size:(i + 1) * self.o.batch_size]
            x = self.to_input(self.train.x[idx])
            y = self.train.y[idx]
            if self.augment is not None:
                x = self.augment(x, self.gen)
            if self.o.channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            for g in self.opt.param_groups:
                g["lr"] = lr_at(self.epoch * steps + i, total, warmup, self.o)
            soft = None if self.train.soft is None else self.train.soft[idx]
            lam, partner = 1.0, None
            if self.mixup > 0:
                lam = float(np.random.beta(self.mixup, self.mixup))
                lam = max(lam, 1 - lam)  # the first clip dominates: its label counts for accuracy
                partner = torch.randperm(len(y), generator=self.gen)
                x = lam * x + (1 - lam) * x[partner]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.o.bf16):
                logits = self.net(x)
                loss = loss_fn(logits, y, self.o, self.weights)
                if partner is not None:
                    loss = lam * loss + (1 - lam) * loss_fn(logits, y[partner], self.o, self.weights)
                if soft is not None:
                    target = soft if partner is None else lam * soft + (1 - lam) * soft[partner]
                    loss = distill_loss(logits, loss, target, self.cfg.distill.alpha, self.cfg.distill.temperature)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            if self.ema is not None:
                ema_update(self.ema, self.model, self.o.ema_decay)
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        loss_sum, correct, seen = distributed.sum_over_ranks([loss_sum, correct, seen], self.world)
        return loss_sum / seen, correct / seen

    def _validate(self) -> dict:
        # Every rank scores the whole validation set (a few % of an epoch): the ranks hold the
        # same weights, so they reach the same best-epoch and early-stopping decisions unaided.
        model = self.ema if self.ema is not None else self.model
        logits = predict_logits(model, self.val.x, self.val_to_input, self.o)
        loss = F.cross_entropy(logits, self.val.y).item()
        pred = logits.argmax(1).numpy()
        true = self.val.y.numpy()
        return {"val_loss": loss, "val_acc": float((pred == true).mean()),
                "val_macro_f1": macro_f1(pred, true, self.k), "val_uar": uar(pred, true, self.k)}

    def _log(self, row: dict, writer) -> None:
        path = self.out / "history.csv"
        with open(path, "w", newline="") as fh:  # rewritten whole: stays valid after resume
            w = csv.DictWriter(fh, fieldnames=list(row))
            w.writeheader()
            w.writerows(self.history)
        if writer is not None:
            for key, value in row.items():
                if key != "epoch":
                    writer.add_scalar(key, value, row["epoch"])
            writer.flush()
        plot_curves(self.history, self.out / "curves.png")


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        print("tensorboard not installed: skipping TensorBoard logs (history.csv is still written)")
        return None
    return SummaryWriter(log_dir=str(out / "tb"))


def plot_curves(history: list[dict], path: Path) -> None:
    """Accuracy and loss per epoch, train vs validation, as one PNG."""
    from matplotlib.figure import Figure  # no pyplot: a Jupyter session's backend stays as it is

    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4))
    ax_acc, ax_loss = fig.subplots(1, 2)
    ax_acc.plot(epochs, [h["train_acc"] for h in history], label="train")
    ax_acc.plot(epochs, [h["val_acc"] for h in history], label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy")
    ax_loss.plot(epochs, [h["train_loss"] for h in history], label="train")
    ax_loss.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    for ax in (ax_acc, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
