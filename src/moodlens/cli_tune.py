"""`moodlens tune`: hyperparameter search over a training recipe ([train] extra; moodlens/train/tune.py)."""

from __future__ import annotations

import json
from pathlib import Path


def add_tune(sub) -> None:
    p = sub.add_parser(
        "tune", help="search a recipe's hyperparameters with Optuna ([train] extra)",
        description="Train short proxy runs of a recipe with values drawn from a search space (TPE sampler, "
                    "pruning of trailing trials), keep the study in a SQLite file (run the same command again "
                    "to resume it), print a table of the trials and write the best recipe as YAML for "
                    "`moodlens train`.")
    p.add_argument("task", choices=["face", "voice"], help="what to tune")
    p.add_argument("--config", type=Path, help="base recipe YAML (see configs/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a base recipe value (repeatable), as for `moodlens train`")
    p.add_argument("--space", type=Path,
                   help="search space YAML (default: configs/tune_TASK.yaml)")
    p.add_argument("--trials", type=int, default=20,
                   help="finished (complete or pruned) trials the study should have, counting earlier runs "
                        "(default: %(default)s)")
    p.add_argument("--timeout", type=float, metavar="MIN",
                   help="start no new trial after this many minutes (default: no limit)")
    p.add_argument("--epochs", type=int, help="epochs of each proxy run (default: the search space's, else 10)")
    p.add_argument("--metric", choices=["val_acc", "val_uar", "val_macro_f1"],
                   help="what to maximise, on the recipe's validation data (default: the search space's, "
                        "else val_acc for face and val_uar for voice)")
    p.add_argument("--pruner", choices=["median", "hyperband", "none"], default="median",
                   help="stop trailing trials early (default: %(default)s)")
    p.add_argument("--study", type=Path, help="study file (default: runs/tune/NAME.db, NAME from the recipe)")
    p.add_argument("--out", type=Path, help="best recipe YAML (default: next to the study, STUDY-best.yaml)")
    p.add_argument("--seed", type=int, default=0, help="seed of the TPE sampler (default: %(default)s)")
    p.set_defaults(run=run_tune)


def run_tune(args) -> int:
    from .train.tune import tune

    summary = tune(args.task, args.config, args.overrides, space=args.space, trials=args.trials,
                   timeout_min=args.timeout, epochs=args.epochs, metric=args.metric, pruner=args.pruner,
                   study=args.study, out=args.out, seed=args.seed)
    print(json.dumps(summary))
    return 130 if summary["interrupted"] else 0
