"""``moodlens tune``: hyperparameter search over a training recipe, on Optuna.

A search space is a YAML file (``configs/tune_face.yaml``, ``configs/tune_voice.yaml``)
mapping dotted recipe keys to distributions::

    task: face                 # the recipes it is for
    metric: val_acc            # val_acc | val_uar | val_macro_f1 (--metric overrides)
    epochs: 10                 # proxy budget of every trial (--epochs overrides)
    search:
      optim.lr: {type: float, low: 5.0e-4, high: 5.0e-3, log: true}
      optim.batch_size: {type: int, low: 32, high: 128, step: 32}
      model.options.widths: {type: categorical, choices: [[32, 64, 128, 256], [48, 96, 192, 256]]}
      model.options.pool: {type: categorical, choices: [meanmax, attention], when: {model.arch: cnn}}

Keys are drawn in file order; ``when`` draws a key only if the recipe drawn so far
has one of the given values there. Each trial applies its draw onto the base recipe and
trains it for the proxy epochs (the learning-rate schedule compressed to them), writing
no checkpoints, on the recipe's own validation data (never a test split). The running
best of the metric is reported after every epoch, so a pruner stops trials that trail the
median of earlier trials at the same epoch. The objective is that best value.

The study lives in a SQLite file, so a search interrupted by Ctrl+C (or one that ran out
of ``--timeout``) continues where it stopped when the same command runs again; the file
records the task, metric and base recipe, and resuming it with others is refused (their
trials would not be comparable). At the end a table of the trials is printed and written
as CSV, and the best trial's values applied onto the base recipe (with its full epoch
count) are written as a recipe that ``moodlens train`` takes as it is.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import DataError, MoodlensError, require
from ..io import atomic_path
from .config import config_from_dict, load_config

METRICS = ("val_acc", "val_uar", "val_macro_f1")
DEFAULT_METRIC = {"face": "val_acc", "voice": "val_uar"}
DEFAULT_EPOCHS = 10
STUDY_NAME = "moodlens-tune"
PRUNERS = ("median", "hyperband", "none")
_MISSING = object()


# --- search space ---------------------------------------------------------------

@dataclass
class Param:
    """One searched recipe key and its distribution."""

    key: str  # dotted recipe key, e.g. optim.lr
    type: str  # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    labels: list = field(default_factory=list)  # categorical: what Optuna stores (scalars)
    decode: dict[str, Any] = field(default_factory=dict)  # label -> recipe value, for lists and mappings
    when: dict[str, list] = field(default_factory=dict)  # dotted key -> values for which this key is drawn

    def applies(self, values: dict) -> bool:
        return all(get_key(values, key) in allowed for key, allowed in self.when.items())

    def suggest(self, trial):
        if self.type == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.type == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return self.value_of(trial.suggest_categorical(self.key, self.labels))

    def value_of(self, label):
        return self.decode.get(label, label) if isinstance(label, str) else label

    def candidates(self) -> list:
        """Values checked against the recipe before any trial runs."""
        if self.type == "categorical":
            return [self.value_of(label) for label in self.labels]
        cast = int if self.type == "int" else float
        return [cast(self.low), cast(self.high)]


@dataclass
class SearchSpace:
    task: str
    params: list[Param]
    metric: str | None = None
    epochs: int | None = None
    source: str = "search space"


_SPACE_KEYS = {"task", "metric", "epochs", "search"}
_PARAM_KEYS = {"float": {"low", "high", "log", "step"}, "int": {"low", "high", "log", "step"},
               "categorical": {"choices"}}


def _flow(value) -> str:
    """One-line YAML: [16, 32], {a: 1}, 0.5, none."""
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).replace("\n...\n", "").strip()


def _parse_param(key: str, spec, where: str) -> Param:
    if not isinstance(spec, dict):
        raise DataError(f"{where}: expected a mapping such as {{type: float, low: 0.1, high: 0.5}}, got {spec!r}")
    kind = spec.get("type")
    if kind not in _PARAM_KEYS:
        raise DataError(f"{where}.type: must be float, int or categorical, not {kind!r}")
    unknown = sorted(set(spec) - _PARAM_KEYS[kind] - {"type", "when"})
    if unknown:
        raise DataError(f"{where}: unknown key(s) {', '.join(unknown)} for type {kind}; allowed: "
                        f"{', '.join(sorted(_PARAM_KEYS[kind] | {'type', 'when'}))}")
    when = spec.get("when", {})
    if not isinstance(when, dict):
        raise DataError(f"{where}.when: expected a mapping of recipe keys to values, got {when!r}")
    when = {k: v if isinstance(v, list) else [v] for k, v in when.items()}
    if kind == "categorical":
        choices = spec.get("choices")
        if isinstance(choices, dict) and choices:  # named choices: Optuna stores the names
            labels = [str(name) for name in choices]
            decode = dict(zip(labels, choices.values()))
        elif isinstance(choices, list) and choices:
            labels, decode = [], {}
            for choice in choices:
                if isinstance(choice, (list, dict)):  # Optuna stores scalars: a list becomes its YAML text
                    labels.append(_flow(choice))
                    decode[labels[-1]] = choice
                else:
                    labels.append(choice)
        else:
            raise DataError(f"{where}.choices: expected a non-empty list (or a mapping of names to values)")
        if len(set(map(repr, labels))) != len(labels):
            raise DataError(f"{where}.choices: repeated choice")
        return Param(key, kind, labels=labels, decode=decode, when=when)
    for bound in ("low", "high"):
        value = spec.get(bound)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(f"{where}.{bound}: expected a number, got {value!r}")
        if kind == "int" and value != int(value):
            raise DataError(f"{where}.{bound}: expected a whole number for type int, got {value!r}")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    if not low < high:
        raise DataError(f"{where}: low ({low}) must be below high ({high})")
    if not isinstance(log, bool):
        raise DataError(f"{where}.log: expected true or false, got {log!r}")
    if log and low <= 0:
        raise DataError(f"{where}: log: true needs low > 0")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0 or log):
        raise DataError(f"{where}.step: expected a positive number (and no log: true), got {step!r}")
    return Param(key, kind, low=low, high=high, log=log, step=step, when=when)


def load_space(path: str | Path) -> SearchSpace:
    """Read and check a search-space file (keys are checked against recipes in :func:`check_space`)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: cannot read search space ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("search"), dict) or not doc["search"]:
        raise DataError(f"{path}: a search space needs a `search:` mapping of recipe keys to distributions")
    unknown = sorted(set(doc) - _SPACE_KEYS)
    if unknown:
        raise DataError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_SPACE_KEYS))}")
    task = doc.get("task", "face")
    if task not in DEFAULT_METRIC:
        raise DataError(f"{path}: task must be face or voice, not {task!r}")
    metric, epochs = doc.get("metric"), doc.get("epochs")
    if metric is not None and metric not in METRICS:
        raise DataError(f"{path}: metric must be one of {', '.join(METRICS)}, not {metric!r}")
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise DataError(f"{path}: epochs must be a whole number >= 1, not {epochs!r}")
    params = [_parse_param(str(k), v, f"{path}: search.{k}") for k, v in doc["search"].items()]
    return SearchSpace(task, params, metric, epochs, str(path))


def get_key(values: dict, key: str):
    node = values
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def set_key(values: dict, key: str, value) -> None:
    node = values
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = copy.deepcopy(value)


def _check_key(recipe, key: str, where: str) -> None:
    """``key`` names a recipe field (or a key inside a free-form mapping such as model.options)."""
    node, done = recipe, []
    for part in key.split("."):
        if isinstance(node, dict):
            return  # model.options, data.relabel...: checked by whoever reads them
        if not dataclasses.is_dataclass(node):
            raise DataError(f"{where}: unknown recipe key {key!r} ({'.'.join(done)} is a value, not a section)")
        names = [f.name for f in dataclasses.fields(node)]
        if part not in names:
            at = ".".join(done) or "the recipe"
            raise DataError(f"{where}: unknown recipe key {key!r}; {at} has {', '.join(names)}")
        node = getattr(node, part)
        done.append(part)


def check_space(space: SearchSpace, base: dict, task: str) -> None:
    """Every key exists in the recipe, every value fits its type; the task matches."""
    if space.task != task:
        raise DataError(f"{space.source}: a search space for {space.task} recipes, "
                        f"but `moodlens tune {task}` was asked")
    recipe = config_from_dict(base)
    for p in space.params:
        where = f"{space.source}: search.{p.key}"
        _check_key(recipe, p.key, where)
        for key in p.when:
            _check_key(recipe, key, f"{where}.when")
        for value in p.candidates():
            values = copy.deepcopy(base)
            set_key(values, p.key, value)
            try:
                cfg = config_from_dict(values, "recipe")
                if p.key.split(".")[0] == "model" and p.applies(base):  # the net takes these options
                    _build_net(cfg)
            except (DataError, ValueError, TypeError) as exc:
                hint = "; the recipe's model.options must suit every model.arch searched" * (p.key == "model.arch")
                raise DataError(f"{where}: the value {_flow(value)} does not fit the recipe: {exc}{hint}") from exc


def _build_net(cfg):
    if cfg.task == "voice":
        from .voice_nets import voice_net_for

        return voice_net_for(cfg, len(cfg.data.labels))
    from .nets import build_net

    return build_net(cfg.model.arch, 7, **cfg.model.options)


# --- recipes ---------------------------------------------------------------------

def plain(value):
    """Tuples as lists, recursively: YAML- and JSON-safe."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def full_recipe(values: dict) -> dict:
    """Every key of the recipe spelled out (defaults included), as plain YAML values."""
    return plain(config_from_dict(values, "recipe").to_dict())


def trial_recipe(base: dict, proxy_epochs: int, work_dir: Path) -> dict:
    """What every trial starts from: the base recipe on the proxy budget, writing into the work folder."""
    values = copy.deepcopy(base)
    values["optim"]["epochs"] = min(proxy_epochs, base["optim"]["epochs"])
    values["out_dir"] = str(work_dir)  # voice keeps its feature cache there, shared by the trials
    if values.get("task") == "face":
        values["data"]["test_usage"] = []  # the test split is never looked at while tuning
    return values


def check_validation(base: dict) -> None:
    """Settings are chosen on the validation data, so it must not be a test split."""
    if base.get("task") != "face":
        return  # voice: whole held-out speakers (data.val or val_fraction)
    tests = [u for u in base["data"]["val_usage"] if "test" in str(u).lower()]
    if tests and not base["data"]["val_split"]:
        raise DataError(f"the recipe validates on {', '.join(tests)}, and tuning chooses settings on the validation "
                        f"data: hold out training rows instead (--set data.val_split=0.1 --set 'data.val_usage=[]')")


def _recipe_diff(a, b, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in _recipe_diff(a.get(k, _MISSING), b.get(k, _MISSING), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


# --- the study -------------------------------------------------------------------

def _open_study(path: Path, pruner):
    import optuna

    path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{path.resolve().as_posix()}"
    try:
        names = optuna.study.get_all_study_names(url)
        if names and STUDY_NAME not in names:
            raise DataError(f"{path}: an Optuna database without a moodlens tuning study (it holds "
                            f"{', '.join(names)}); choose another --study file")
        return optuna.create_study(study_name=STUDY_NAME, storage=url, pruner=pruner, direction="maximize",
                                   load_if_exists=True)
    except MoodlensError:
        raise
    except Exception as exc:  # sqlalchemy/alembic errors: not an SQLite file, another schema...
        raise DataError(f"{path}: not a tuning study file that Optuna can open ({type(exc).__name__}: {exc})") from exc


def _check_study(study, path: Path, task: str, metric: str, recipe: dict) -> None:
    """A new study records what it tunes; an old one must be resumed with the same."""
    attrs = study.user_attrs
    if "task" not in attrs:
        if study.trials:
            raise DataError(f"{path}: an Optuna study not made by moodlens tune; choose another --study file")
        study.set_user_attr("task", task)
        study.set_user_attr("metric", metric)
        study.set_user_attr("recipe", recipe)
        return
    fresh = "resume it with the same recipe and settings, or pass another --study file to start a new study"
    if attrs["task"] != task:
        raise DataError(f"{path}: a tuning study of {attrs['task']} recipes, not {task}; {fresh}")
    if attrs["metric"] != metric:
        raise DataError(f"{path}: this study maximises {attrs['metric']}, not {metric}; {fresh}")
    changed = _recipe_diff(attrs["recipe"], recipe)
    if changed:
        more = f" and {len(changed) - 8} more" if len(changed) > 8 else ""
        raise DataError(f"{path}: this study's trials were trained from another recipe (it differs in "
                        f"{', '.join(changed[:8])}{more}; the proxy epochs count too); {fresh}")


def _pruner(name: str, epochs: int):
    import optuna

    if name == "median":  # stop a trial whose best so far trails the median of earlier trials at that epoch
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, epochs // 3))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise DataError(f"--pruner must be one of {', '.join(PRUNERS)}, not {name!r}")


def _finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def _describe(values: dict) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in values.items())


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else _flow(value)


def make_objective(space: SearchSpace, start: dict, task: str, metric: str):
    import optuna

    if task == "voice":
        from .voice import train_voice as train
    else:
        from .face import train_face as train

    def objective(trial) -> float:
        values, drawn = copy.deepcopy(start), {}
        for p in space.params:
            if p.applies(values):
                drawn[p.key] = p.suggest(trial)
                set_key(values, p.key, drawn[p.key])
        trial.set_user_attr("values", plain(drawn))  # recipe values (categorical labels decoded)
        is_base = bool(trial.user_attrs.get("base_recipe"))
        print(f"\n--- trial {trial.number}{' (the base recipe)' if is_base else ''}: {_describe(drawn)}", flush=True)
        best = -math.inf

        def report(row: dict) -> None:
            nonlocal best
            best = max(best, row[metric])
            trial.report(best, row["epoch"])
            if trial.should_prune() and not is_base:  # the base recipe runs in full: it is the yardstick
                raise optuna.TrialPruned(f"{metric} {best:.4f} after {row['epoch']} epochs trails earlier trials")

        try:  # TrialPruned and KeyboardInterrupt pass through
            train(config_from_dict(values, f"trial {trial.number}"), save=False, epoch_callback=report)
        except (DataError, ValueError, TypeError, RuntimeError) as exc:
            raise DataError(f"trial {trial.number} ({_describe(drawn)}) failed: {exc}") from exc
        return best

    return objective


def _net_default(task: str, arch: str, option: str):
    """The default of a network's constructor option, or _MISSING."""
    import inspect

    if task == "voice":
        from .voice_nets import VOICE_NETS as nets
    else:
        from .nets import ARCHITECTURES as nets
    if arch not in nets:
        return _MISSING
    parameter = inspect.signature(nets[arch]).parameters.get(option)
    return _MISSING if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def base_params(space: SearchSpace, start: dict) -> dict:
    """The base recipe's own value of every searched key the space can express.

    Enqueued as the first trial of a new study, so the table shows what tuning gained over
    the recipe it started from. Network options the recipe leaves out take the network's
    default; values outside the space are not fixed (that trial draws them).
    """
    fixed = {}
    for p in space.params:
        if not p.applies(start):
            continue
        value = get_key(start, p.key)
        if value is _MISSING and p.key.startswith("model.options."):
            value = _net_default(start["task"], start["model"]["arch"], p.key.removeprefix("model.options."))
        if value is _MISSING:
            continue
        if p.type == "categorical":
            labels = [label for label in p.labels if p.value_of(label) == value]
            if labels:
                fixed[p.key] = labels[0]
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and p.low <= value <= p.high:
            fixed[p.key] = int(value) if p.type == "int" else float(value)
    return fixed


def _after_trial(metric: str):
    def show(study, trial) -> None:
        value = trial.value if trial.value is not None else max(trial.intermediate_values.values(), default=None)
        shown = "-" if value is None else f"{value:.4f}"
        try:
            best = f"; best so far: trial {study.best_trial.number}, {study.best_value:.4f}"
        except ValueError:
            best = ""
        print(f"--- trial {trial.number} {trial.state.name.lower()}: {metric} {shown}{best}", flush=True)

    return show


# --- results ---------------------------------------------------------------------

def trial_rows(study, space: SearchSpace) -> tuple[list[str], list[dict]]:
    """Columns and rows of the trials table (values as written into recipes)."""
    keys = [p.key for p in space.params]
    for t in study.trials:  # keys of earlier search spaces too
        keys += [k for k in t.user_attrs.get("values", {}) if k not in keys]
    metric = study.user_attrs.get("metric", "value")
    rows = []
    for t in study.trials:
        value = t.value if t.value is not None else max(t.intermediate_values.values(), default=None)
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete else None
        drawn = t.user_attrs.get("values", {})
        rows.append({"trial": t.number, "base": bool(t.user_attrs.get("base_recipe")), "state": t.state.name,
                     metric: value, "epochs": max(t.intermediate_values, default=0), "seconds": seconds,
                     **{k: drawn.get(k, "") for k in keys}})
    return ["trial", "state", metric, "epochs", "seconds", *keys], rows


def render_table(columns: list[str], rows: list[dict], best: int | None) -> str:
    """The trials as aligned text; the best trial is marked with *, the base recipe's with "base"."""
    def cell(column: str, value) -> str:
        if value is None or value == "":
            return "-" if value is None else ""
        if column == "seconds":
            return f"{value:.0f}"
        return f"{value:.4f}" if column == columns[2] else _short(value)

    table = [columns] + [[cell(c, r[c]) for c in columns] for r in rows]
    for line, r in zip(table[1:], rows):
        line[0] = f"{r['trial']}{' base' if r.get('base') else ''}{' *' if r['trial'] == best else ''}"
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(text.ljust(w) for text, w in zip(line, widths)).rstrip() for line in table)


def write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()} for r in rows)


def write_best(path: Path, base: dict, trial, metric: str, study_path: Path, epochs: int) -> dict:
    """The base recipe with the best trial's values, full epochs, its own out_dir: a recipe for `moodlens train`."""
    values = copy.deepcopy(base)
    drawn = trial.user_attrs.get("values", {})
    for key, value in drawn.items():
        set_key(values, key, value)
    values["name"] = f"{base['name']}-tuned"
    values["out_dir"] = f"{base['out_dir'].rstrip('/')}_tuned"
    recipe = full_recipe(values)
    header = [
        f"# Chosen by `moodlens tune {base['task']}`: trial {trial.number} of the study {study_path},",
        (f"# {metric} {trial.value:.4f} in a {epochs}-epoch proxy run; this recipe trains for the full "
         f"{recipe['optim']['epochs']} epochs."),
        "# Tuned values:",
        *[f"#   {k}: {_flow(v)}" for k, v in drawn.items()],
        f"# Train:  moodlens train {base['task']} --config {path}",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(header) + "\n" + yaml.dump(recipe, Dumper=_RecipeDumper, sort_keys=False, width=120))
    return recipe


class _RecipeDumper(yaml.SafeDumper):
    """Block style, except lists of plain values, written on one line as in configs/."""


_RecipeDumper.add_representer(list, lambda dumper, data: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=not any(isinstance(v, (list, dict)) for v in data)))


def param_importances(study, min_trials: int = 5) -> dict[str, float]:
    """Each drawn key's share of the metric's variance (fANOVA, Optuna's evaluator), largest first.

    Empty with fewer than ``min_trials`` complete trials, where the split would be noise.
    Keys drawn only `when` others have some value are left out (not every trial has them).
    """
    import optuna

    if sum(t.state.name == "COMPLETE" for t in study.trials) < min_trials:
        return {}
    try:
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
    except (ValueError, RuntimeError):  # e.g. every trial drew the same values
        return {}
    return {key: round(float(share), 4) for key, share in found.items()}


def tune(task: str, config: str | Path | None = None, overrides=(), space: str | Path | SearchSpace | None = None,
         trials: int = 20, timeout_min: float | None = None, epochs: int | None = None, metric: str | None = None,
         pruner: str = "median", study: str | Path | None = None, out: str | Path | None = None,
         seed: int = 0) -> dict:
    """Run (or resume) a study until it has ``trials`` finished (complete or pruned) trials
    or ``timeout_min`` minutes have passed; write the table and the best recipe.

    Returns ``{"study", "table", "best_recipe", "finished", "best": {...} | None, "interrupted"}``.
    """
    optuna = require("optuna", "train")
    base = full_recipe(load_config(config, list(overrides), task=task).to_dict())
    check_validation(base)
    if space is None:
        space = Path("configs") / f"tune_{task}.yaml"
        if not space.exists():
            raise DataError(f"no search space: pass --space FILE (example: the repository's configs/tune_{task}.yaml)")
    space = space if isinstance(space, SearchSpace) else load_space(space)
    check_space(space, base, task)
    metric = metric or space.metric or DEFAULT_METRIC[task]
    if metric not in METRICS:
        raise DataError(f"--metric must be one of {', '.join(METRICS)}, not {metric!r}")
    epochs = epochs or space.epochs or DEFAULT_EPOCHS
    if trials < 1 or epochs < 1:
        raise DataError("--trials and --epochs must be at least 1")
    study_path = Path(study) if study else Path("runs") / "tune" / f"{base['name']}.db"
    stem = study_path.with_suffix("")
    start = trial_recipe(base, epochs, Path(f"{stem}-work"))
    compared = {k: v for k, v in start.items() if k not in ("name", "out_dir")}

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the trials print their own lines
    s = _open_study(study_path, _pruner(pruner, start["optim"]["epochs"]))
    _check_study(s, study_path, task, metric, compared)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # group: keys drawn only `when` others have some value. Seeded by the trials so far too,
        # so a resumed run draws new values (its random start-up trials would repeat otherwise).
        s.sampler = optuna.samplers.TPESampler(seed=seed + len(s.trials), multivariate=True, group=True)
    if not s.trials:
        s.enqueue_trial(base_params(space, start), user_attrs={"base_recipe": True})
    done = _finished(s)
    left = trials - done
    print(f"study {study_path}: {done} finished trial(s); {max(left, 0)} to go, {start['optim']['epochs']} epochs "
          f"each, maximising {metric}" + (f", for at most {timeout_min:g} min" if timeout_min else ""), flush=True)
    interrupted = False
    started = time.time()
    if left > 0:
        try:
            s.optimize(make_objective(space, start, task, metric), n_trials=left,
                       timeout=timeout_min * 60 if timeout_min else None, callbacks=[_after_trial(metric)])
        except KeyboardInterrupt:
            interrupted = True
            print(f"\ninterrupted: the study in {study_path} keeps its finished trials; "
                  f"run the same command again to continue", flush=True)

    columns, rows = trial_rows(s, space)
    table_path = Path(f"{stem}-trials.csv")
    write_csv(table_path, columns, rows)
    complete = [t for t in s.trials if t.value is not None and t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: t.value) if complete else None
    print("\n" + render_table(columns, rows, best.number if best else None))
    summary = {"study": str(study_path), "table": str(table_path), "best_recipe": None, "finished": _finished(s),
               "best": None, "interrupted": interrupted, "minutes": (time.time() - started) / 60}
    if best is None:
        print(f"\nno finished trial yet; wrote {table_path}")
        return summary
    importances = param_importances(s)
    if importances:
        print("\nwhat mattered (fANOVA share of the metric's variance over the complete trials): "
              + ", ".join(f"{k} {v:.2f}" for k, v in importances.items()))
    summary["importances"] = importances
    out_path = Path(out) if out else Path(f"{stem}-best.yaml")
    write_best(out_path, base, best, metric, study_path, start["optim"]["epochs"])
    summary["best_recipe"] = str(out_path)
    summary["best"] = {"trial": best.number, metric: best.value, "values": best.user_attrs.get("values", {})}
    print(f"\nbest: trial {best.number}, {metric} {best.value:.4f} ({_describe(summary['best']['values'])})\n"
          f"wrote {table_path} and {out_path}; train it with: moodlens train {task} --config {out_path}")
    return summary
