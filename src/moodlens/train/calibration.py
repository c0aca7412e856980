"""Calibrated probabilities: a softmax temperature fitted on validation data,
expected calibration error, a reliability diagram, and the temperature baked
into an exported graph.

Fusion averages face and voice probabilities and the adaptive content acts on
confidence, so "80%" should mean right four times in five.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ..io import atomic_path


def ece(probs: np.ndarray, true: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error: |accuracy - confidence| over equal-width confidence bins, weighted by count."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    correct = (pred == true).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - conf[inside].mean())
    return float(total)


def fit_temperature(logits: np.ndarray, true: np.ndarray) -> float:
    """The T > 0 minimising the negative log-likelihood of softmax(logits / T)
    (golden-section search on log T in [1/20, 20])."""
    if len(true) == 0:
        raise DataError("fit_temperature: no predictions")
    lg = np.asarray(logits, np.float64)

    def nll(log_t: float) -> float:
        z = lg / math.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[np.arange(len(true)), true] - np.log(np.exp(z).sum(axis=1))).mean())

    a, b = math.log(0.05), math.log(20.0)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = nll(c), nll(d)
    for _ in range(80):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = nll(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = nll(d)
    return float(math.exp((a + b) / 2))


def reliability_diagram(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, bins: int = 15,
                        title: str = "Reliability") -> None:
    """Accuracy against confidence per bin, one line per ``name: (probs, true)``, as a PNG."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect")
    edges = np.linspace(0, 1, bins + 1)
    for name, (probs, true) in curves.items():
        conf, correct = probs.max(axis=1), probs.argmax(axis=1) == true
        which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
        used = [b for b in range(bins) if (which == b).any()]
        ax.plot([conf[which == b].mean() for b in used], [correct[which == b].mean() for b in used], marker="o",
                label=f"{name} (ECE {ece(probs, true, bins):.3f})")
    ax.set(xlabel="confidence", ylabel="accuracy", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


class Tempered(torch.nn.Module):
    """A net whose logits are divided by a fixed temperature (calibration baked into the graph)."""

    def __init__(self, net: torch.nn.Module, temperature: float):
        super().__init__()
        self.net, self.temperature = net, float(temperature)

    def forward(self, x):
        return self.net(x) / self.temperature
