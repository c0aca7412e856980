"""Classification metrics and reports.

Written with numpy alone (checked against scikit-learn in the tests) so that
``moodlens evaluate`` runs on a core install: it is how bundled models are
checked on withheld data, wherever moodlens is installed. Plots import
matplotlib lazily.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import atomic_path


@dataclass
class Report:
    labels: tuple[str, ...]  # class names, confusion-matrix order
    confusion: np.ndarray  # (K, K) counts, rows = true, columns = predicted
    extra: dict  # anything else to put in the JSON (model, data, timing)

    @property
    def n(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(1, self.n))

    def per_class(self) -> dict[str, dict]:
        cm = self.confusion.astype(float)
        tp = np.diag(cm)
        support = cm.sum(axis=1)
        predicted = cm.sum(axis=0)
        precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
        recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
        denom = precision + recall
        f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
        return {
            label: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                    "support": int(support[i])}
            for i, label in enumerate(self.labels)
        }

    def _present(self) -> list[dict]:
        """Classes that occur in the data; macro averages skip absent ones."""
        return [m for m in self.per_class().values() if m["support"] > 0]

    @property
    def macro_f1(self) -> float:
        return float(np.mean([m["f1"] for m in self._present()]))

    @property
    def uar(self) -> float:
        """Unweighted average recall (balanced accuracy)."""
        return float(np.mean([m["recall"] for m in self._present()]))

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy, "macro_f1": self.macro_f1, "uar": self.uar, "n": self.n,
            "per_class": self.per_class(), "labels": list(self.labels),
            "confusion_matrix": self.confusion.tolist(), **self.extra,
        }

    def text(self) -> str:
        """A classification report table, as people expect to read one."""
        width = max(12, *(len(l) for l in self.labels))
        lines = [f"{'':>{width}}  precision  recall  f1-score  support"]
        for label, m in self.per_class().items():
            lines.append(f"{label:>{width}}  {m['precision']:9.3f}  {m['recall']:6.3f}  {m['f1']:8.3f}  {m['support']:7d}")
        lines.append("")
        lines.append(f"{'accuracy':>{width}}  {'':9}  {'':6}  {self.accuracy:8.3f}  {self.n:7d}")
        lines.append(f"{'macro F1':>{width}}  {'':9}  {'':6}  {self.macro_f1:8.3f}  {self.n:7d}")
        lines.append(f"{'UAR':>{width}}  {'':9}  {'':6}  {self.uar:8.3f}  {self.n:7d}")
        return "\n".join(lines)

    def confusion_text(self) -> str:
        """The confusion matrix as aligned text, rows true, columns predicted."""
        lines = ["confusion matrix (rows true, columns predicted):",
                 "  " + " ".join(f"{l[:7]:>7}" for l in self.labels)]
        for label, row in zip(self.labels, self.confusion):
            lines.append("  " + " ".join(f"{v:7d}" for v in row) + f"  {label}")
        return "\n".join(lines)

    def save_json(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2))

    def save_confusion_png(self, path: str | Path, title: str = "") -> None:
        from .errors import require

        require("matplotlib", "train")
        # A Figure without pyplot: no global backend switch (which would stop a
        # Jupyter session's plots from showing) and nothing to close.
        from matplotlib.figure import Figure

        cm = self.confusion
        rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        k = len(self.labels)
        fig = Figure(figsize=(1.1 * k + 2, 1.0 * k + 1.5))
        ax = fig.subplots()
        ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(k), self.labels, rotation=45, ha="right")
        ax.set_yticks(range(k), self.labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{cm[i, j]}\n{rates[i, j]:.0%}", ha="center", va="center", fontsize=8,
                        color="white" if rates[i, j] > 0.5 else "black")
        ax.set_title(title or f"accuracy {self.accuracy:.3f}, macro F1 {self.macro_f1:.3f}")
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=110)


def show_report(rep: Report, header: str, as_json: bool, out_dir: Path | None) -> None:
    """What `moodlens evaluate` prints (one JSON object, or the readable report)
    and, with ``out_dir``, the report.json and confusion.png it writes."""
    if out_dir:
        rep.save_json(Path(out_dir) / "report.json")
        rep.save_confusion_png(Path(out_dir) / "confusion.png")
    if as_json:
        print(json.dumps(rep.to_dict()))
    else:
        print(header + "\n")
        print(rep.text())
        print("\n" + rep.confusion_text())


def confusion_matrix(true: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    true, pred = np.asarray(true, np.int64), np.asarray(pred, np.int64)
    return np.bincount(true * k + pred, minlength=k * k).reshape(k, k)


def report(true: np.ndarray, pred: np.ndarray, labels: tuple[str, ...], **extra) -> Report:
    return Report(tuple(labels), confusion_matrix(true, pred, len(labels)), extra)
