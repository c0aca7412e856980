"""Adaptive content: pick what an application shows from the user's mood.

A policy file (YAML or JSON) maps moods to content items; ``ContentSelector``
feeds it mood scores over time and returns the item to show. Three things keep
the choice from flickering with every frame:

* ``smoothing``: an exponential moving average of the incoming scores;
* ``hysteresis``: a rule is entered when its score reaches ``min_score`` but
  left only when it falls below ``min_score - hysteresis``, and a challenger
  must beat the shown rule by ``hysteresis`` to replace it;
* ``dwell_seconds``: a choice stays on screen at least this long.

The policy format (``policies/example.yaml`` is a documented example)::

    version: 1
    dwell_seconds: 4        # >= 0
    hysteresis: 0.1         # 0 <= h < 1
    smoothing: 0.3          # 0 < a <= 1, weight of the newest scores (1 = none)
    default: everyday-feed  # item shown while no rule holds
    items:                  # id -> item; "title" is required, other fields are the app's own
      everyday-feed: {kind: media, title: "Today's picks"}
      sunny-ad: {kind: ad, title: "Summer sale", theme: bright}
    rules:                  # first match wins ties
      - when: happy         # a mood, or a list of moods whose scores add up
        min_score: 0.5      # 0-1
        show: sunny-ad
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import MoodlensError
from .labels import CANONICAL

POLICY_VERSION = 1
EXAMPLE_POLICY = Path(__file__).parent / "policies" / "example.yaml"
_TOP_KEYS = {"version", "name", "description", "dwell_seconds", "hysteresis", "smoothing", "default", "items", "rules"}
_RULE_KEYS = {"when", "min_score", "show", "note"}


class PolicyError(MoodlensError, ValueError):
    """A policy file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Rule:
    moods: tuple[str, ...]
    min_score: float
    show: str

    def score(self, scores: dict[str, float]) -> float:
        return sum(scores.get(m, 0.0) for m in self.moods)


@dataclass
class Policy:
    items: dict[str, dict]
    rules: list[Rule]
    default: str
    dwell_seconds: float = 4.0
    hysteresis: float = 0.1
    smoothing: float = 0.3
    name: str = ""
    source: str = "<dict>"

    def to_dict(self) -> dict:
        return {"version": POLICY_VERSION, "name": self.name, "dwell_seconds": self.dwell_seconds,
                "hysteresis": self.hysteresis, "smoothing": self.smoothing, "default": self.default,
                "items": self.items,
                "rules": [{"when": list(r.moods), "min_score": r.min_score, "show": r.show} for r in self.rules]}


def load_policy(path: str | Path | None = None) -> Policy:
    """Read and validate a policy file (.yaml/.yml or .json); None = the example."""
    path = Path(path) if path is not None else EXAMPLE_POLICY
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read policy file ({getattr(exc, 'strerror', None) or exc})") from exc
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise PolicyError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from exc
    return parse_policy(data, str(path))


def parse_policy(data, source: str = "<dict>") -> Policy:
    """Validate a policy already parsed into Python objects."""

    def fail(where: str, problem: str):
        raise PolicyError(f"{source}: {where}: {problem}")

    def number(where: str, value, low: float, high: float, low_open=False, high_open=False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            fail(where, f"expected a number, got {value!r}")
        if value < low or value > high or (low_open and value == low) or (high_open and value == high):
            fail(where, f"{value} is out of range {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}")
        return float(value)

    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy is a mapping with items and rules, got {type(data).__name__}")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        fail(", ".join(sorted(map(str, unknown))), f"unknown key (expected {', '.join(sorted(_TOP_KEYS))})")
    if data.get("version", POLICY_VERSION) != POLICY_VERSION:
        fail("version", f"this moodlens reads policy version {POLICY_VERSION}, got {data.get('version')!r}")
    items = data.get("items")
    if not isinstance(items, dict) or not items:
        fail("items", "a non-empty mapping of item id -> item is required")
    for key, item in items.items():
        if not isinstance(key, str) or not key:
            fail("items", f"item ids must be non-empty strings, got {key!r}")
        if not isinstance(item, dict) or not isinstance(item.get("title"), str):
            fail(f"items.{key}", "each item is a mapping with at least a 'title' string")
    rules_data = data.get("rules")
    if not isinstance(rules_data, list) or not rules_data:
        fail("rules", "a non-empty list of rules is required")
    rules = []
    for i, r in enumerate(rules_data):
        where = f"rules[{i}]"
        if not isinstance(r, dict):
            fail(where, f"expected a mapping with when, min_score and show, got {r!r}")
        unknown = set(r) - _RULE_KEYS
        if unknown:
            fail(where, f"unknown key {', '.join(sorted(map(str, unknown)))} (expected {', '.join(sorted(_RULE_KEYS))})")
        moods = r.get("when")
        moods = [moods] if isinstance(moods, str) else moods
        if not isinstance(moods, list) or not moods:
            fail(f"{where}.when", "expected a mood or a list of moods")
        for m in moods:
            if m not in CANONICAL:
                fail(f"{where}.when", f"{m!r} is not an emotion; expected one of {', '.join(CANONICAL)}")
        if "min_score" not in r:
            fail(f"{where}.min_score", "required (0-1)")
        min_score = number(f"{where}.min_score", r["min_score"], 0.0, 1.0)
        show = r.get("show")
        if not isinstance(show, str) or show not in items:
            fail(f"{where}.show", f"{show!r} is not one of the items ({', '.join(items)})")
        rules.append(Rule(tuple(moods), min_score, r["show"]))
    default = data.get("default")
    if not isinstance(default, str) or default not in items:
        fail("default", f"{default!r} is not one of the items ({', '.join(items)})")
    return Policy(items=items, rules=rules, default=default,
                  dwell_seconds=number("dwell_seconds", data.get("dwell_seconds", 4.0), 0.0, 3600.0),
                  hysteresis=number("hysteresis", data.get("hysteresis", 0.1), 0.0, 1.0, high_open=True),
                  smoothing=number("smoothing", data.get("smoothing", 0.3), 0.0, 1.0, low_open=True),
                  name=str(data.get("name", "")), source=source)


@dataclass
class Choice:
    item_id: str
    item: dict
    rule: int | None  # index of the rule that chose it; None = the default item
    mood: str | None  # the rule's moods joined by "+", None for the default item
    score: float  # the rule's current (smoothed) score
    since: float  # time the item went on screen
    changed: bool  # True on the update that switched to this item

    def to_dict(self) -> dict:
        return {"item_id": self.item_id, "item": self.item, "rule": self.rule, "mood": self.mood,
                "score": round(self.score, 4), "since": round(self.since, 3), "changed": self.changed}


class ContentSelector:
    """Feed mood scores with their time; get the item to show."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self.reset()

    def reset(self) -> None:
        """Forget the mood history and what is on screen."""
        self._smoothed: dict[str, float] = {}
        self._rule: int | None = None  # index of the rule on screen; None = the default item
        self._item: str | None = None  # None until the first update
        self._since = -math.inf  # when the item on screen appeared

    def update(self, scores: dict[str, float] | None, t: float) -> Choice:
        """``scores``: label -> probability now (None: no face or voice this
        moment, which changes nothing); ``t``: seconds, increasing."""
        p = self.policy
        if scores:
            # A label absent from this update (say "calm" once the voice result has
            # gone stale) counts as 0, so its old score fades instead of lingering.
            a, old = p.smoothing, self._smoothed
            self._smoothed = {k: a * scores.get(k, 0.0) + (1 - a) * old.get(k, scores.get(k, 0.0))
                              for k in scores.keys() | old.keys()}
        s = self._smoothed
        first = self._item is None  # nothing on screen yet: no dwell to respect
        changed = first
        if first:
            self._rule, self._item, self._since = None, p.default, t
        if scores and (first or t - self._since >= p.dwell_seconds):
            target = self._target(s)
            if target != self._rule:
                item = p.default if target is None else p.rules[target].show
                self._rule = target
                if item != self._item:  # two rules may show the same item: no visible change
                    self._item, self._since, changed = item, t, True
        rule = None if self._rule is None else p.rules[self._rule]
        return Choice(self._item, p.items[self._item], self._rule, None if rule is None else "+".join(rule.moods),
                      rule.score(s) if rule else 0.0, self._since, changed)

    def _target(self, s: dict[str, float]) -> int | None:
        """The rule that should be shown now, given the one that is."""
        p = self.policy
        entered = [(r.score(s), -i, i) for i, r in enumerate(p.rules) if r.score(s) >= r.min_score]
        best = max(entered)[2] if entered else None
        if self._rule is None:
            return best
        current = p.rules[self._rule]
        if current.score(s) < current.min_score - p.hysteresis:
            return best  # the shown rule no longer holds: the best one, or the default
        if best is not None and best != self._rule and p.rules[best].score(s) >= current.score(s) + p.hysteresis:
            return best
        return self._rule
