"""Knowledge distillation: teachers' soft labels, cached once, taught to a student.

``moodlens distill face --teachers A.pt B.pt --config student.yaml`` runs each
teacher checkpoint over every ``train_usage`` row of the recipe's data (the
face and its mirror image), stores the logits in the file the recipe names
(``distill.soft_labels``, float16: ~0.8 MB per teacher for FER-2013), and
trains the student on

    (1 - alpha) * cross-entropy(hard label) + alpha * T^2 * KL(teachers_T || student_T)

(Hinton et al. 2015), where ``teachers_T`` averages the teachers' softmax at
temperature T over both views. A later run reads the cache and needs no teacher.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DataError
from ..io import atomic_path

CACHE_FORMAT = "moodlens-soft-labels-1"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_teacher(path: str | Path, labels: tuple[str, ...]):
    """A teacher net from a training checkpoint, refused unless it is a face model with ``labels``."""
    from .export import load_checkpoint

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such teacher checkpoint")
    try:
        net, state = load_checkpoint(path)
    except Exception as exc:  # torch.load fails in many ways on a file that is not a checkpoint
        raise DataError(f"{path}: not a moodlens training checkpoint ({type(exc).__name__}: {exc})") from exc
    task, found = state["card"].get("task"), tuple(state["card"].get("labels", ()))
    if task != "face":
        raise DataError(f"{path}: a {task} model; a face teacher is needed")
    if found != labels:
        raise DataError(f"{path}: predicts {', '.join(found)}, but the student's data has {', '.join(labels)}")
    return net


@torch.no_grad()
def teacher_logits(net, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """(N, 2, K) logits for each face and its mirror image."""
    from .face import images_to_input

    out = []
    for i in range(0, len(images), batch_size):
        x = images_to_input(torch.from_numpy(images[i:i + batch_size]))
        out.append(torch.stack([net(x), net(x.flip(-1))], dim=1).float())
    return torch.cat(out).numpy()


def build_soft_labels(teachers: list[str | Path], images: np.ndarray, labels: tuple[str, ...], out: str | Path,
                      source: str, append: bool = False) -> Path:
    """Run every teacher over ``images`` and write the cache (atomically).

    With ``append`` the teachers already in ``out`` are kept and the new ones added
    after them, so a cache outlives the checkpoints it was made from.
    """
    out = Path(out)
    logits, names, digests = [], [], []
    if append:
        if not out.is_file():
            raise DataError(f"{out}: no soft-label cache to add teachers to; build it without --append")
        logits = list(load_soft_labels(out, rows=len(images), labels=labels).astype(np.float16))
        with np.load(out, allow_pickle=False) as z:
            names, digests = [str(t) for t in z["teachers"]], [str(d) for d in z["teacher_sha256"]]
    kept = list(digests)
    for i, path in enumerate(teachers, start=1):
        net = load_teacher(path, labels)
        digest = _sha256(Path(path))
        if digest in kept:
            raise DataError(f"{path}: this checkpoint is already in {out} (teacher {kept.index(digest) + 1})")
        print(f"teacher {i}/{len(teachers)}: {path} over {len(images)} images (and their mirror images)", flush=True)
        logits.append(teacher_logits(net, images).astype(np.float16))
        names.append(f"{Path(path).parent.name}/{Path(path).name}")  # run folder too: every teacher is best.pt
        digests.append(digest)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, format=np.array(CACHE_FORMAT), logits=np.stack(logits), labels=np.array(labels),
                teachers=np.array(names), teacher_sha256=np.array(digests),
                source=np.array(source), rows=np.array(len(images)))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB): {len(names)} teacher(s) x {len(images)} rows x 2 views")
    return out


def load_soft_labels(path: str | Path, rows: int, labels: tuple[str, ...]) -> np.ndarray:
    """(teachers, rows, 2, K) float32 logits; refused if the file does not fit the data."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no soft-label cache; build it with `moodlens distill face --teachers ...`")
    try:
        z = np.load(path, allow_pickle=False)
        fmt, logits, found = str(z["format"]), z["logits"], tuple(str(s) for s in z["labels"])
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a moodlens soft-label cache ({exc})") from exc
    if fmt != CACHE_FORMAT:
        raise DataError(f"{path}: cache format {fmt!r}, expected {CACHE_FORMAT!r}")
    if found != labels:
        raise DataError(f"{path}: soft labels for {', '.join(found)}, but the data has {', '.join(labels)}")
    if logits.ndim != 4 or logits.shape[1] != rows:
        raise DataError(f"{path}: {logits.shape[1] if logits.ndim == 4 else '?'} rows, but the recipe's training "
                        f"data has {rows}; rebuild it with --teachers for this data")
    return logits.astype(np.float32)


def teacher_targets(logits: np.ndarray, temperature: float) -> torch.Tensor:
    """(rows, K) probabilities: softmax(logits / T), averaged over teachers and both views."""
    t = torch.from_numpy(logits) / temperature
    return t.softmax(dim=-1).mean(dim=(0, 2))


def ferplus_targets(ferplus_csv: str | Path, usage: np.ndarray, train_usage: list[str],
                    labels: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """FER+ vote distributions over ``labels`` for the ``train_usage`` rows, and which rows have any.

    ``usage`` is the Usage column of the whole FER-2013 file the recipe reads (FER+
    rows align with it one to one). Votes for classes the model does not
    predict (contempt, unknown, not a face) are left out before normalising.
    """
    from ..data.ferplus import read_ferplus_votes
    from ..labels import FERPLUS_COLUMNS

    votes, plus_usage = read_ferplus_votes(ferplus_csv)
    if len(votes) != len(usage) or not np.array_equal(plus_usage, usage):
        raise DataError(f"{ferplus_csv}: its rows do not align with the recipe's FER-2013 data "
                        f"({len(votes)} vs {len(usage)} rows, or another Usage column)")
    columns = list(FERPLUS_COLUMNS.values())
    picked = np.stack([votes[:, columns.index(label)] if label in columns else np.zeros(len(votes)) for label in labels],
                      axis=1).astype(np.float32)[np.isin(usage, train_usage)]
    total = picked.sum(axis=1, keepdims=True)
    return picked / np.maximum(total, 1), total[:, 0] > 0


def distill_loss(student_logits: torch.Tensor, hard_loss: torch.Tensor, targets: torch.Tensor,
                 alpha: float, temperature: float) -> torch.Tensor:
    """Mix the hard-label loss with the KL divergence to the teachers' distribution."""
    log_p = F.log_softmax(student_logits.float() / temperature, dim=1)
    soft = F.kl_div(log_p, targets, reduction="batchmean") * temperature ** 2
    return (1 - alpha) * hard_loss + alpha * soft


def distill_face(cfg, teachers: list[str] | None = None, resume: bool = False, cache_only: bool = False,
                 append: bool = False, **train_options) -> dict:
    """Build the soft-label cache from ``teachers`` (when given), then train the student ``cfg``.

    The cache goes where ``distill.soft_labels`` says, or to ``out_dir/soft_labels.npz``.
    With ``resume`` an existing cache is kept: the student continues on the same targets.
    With ``append`` the teachers are added to the existing cache instead of replacing it.
    """
    import dataclasses

    from .face import load_all, train_face

    if append and not teachers:
        raise DataError("--append adds --teachers to the cache: give them")
    path = Path(cfg.distill.soft_labels or Path(cfg.out_dir) / "soft_labels.npz")
    if teachers and not (resume and path.exists()):
        train = load_all(cfg).split(cfg.data.train_usage)
        build_soft_labels(teachers, train.images, train.label_names, path,
                          source=f"{cfg.data.path} ({', '.join(cfg.data.train_usage)})", append=append)
    elif not cfg.distill.soft_labels and not path.exists():
        raise DataError("nothing to distil from: give --teachers A.pt B.pt ... or set distill.soft_labels in the recipe")
    if cache_only:
        if not teachers:
            raise DataError("--cache-only builds the cache from --teachers: give them")
        return {"soft_labels": str(path)}
    cfg = dataclasses.replace(cfg, distill=dataclasses.replace(cfg.distill, soft_labels=str(path)))
    return train_face(cfg, resume=resume, **train_options)
