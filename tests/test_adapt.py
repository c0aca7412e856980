"""Content policies: loading and validating YAML/JSON files, and the selector's
dwell time, hysteresis and smoothing over a sequence of mood scores."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml

from moodlens.adapt import EXAMPLE_POLICY, ContentSelector, PolicyError, load_policy, parse_policy

EXAMPLE = yaml.safe_load(EXAMPLE_POLICY.read_text())


def write_policy(tmp_path, data, name="policy.yaml"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if name.endswith(".json") else yaml.safe_dump(data))
    return path


def edited(change) -> dict:
    """A copy of the example policy with ``change(data)`` applied."""
    data = copy.deepcopy(EXAMPLE)
    change(data)
    return data


def mood(label: str, score: float) -> dict[str, float]:
    """Scores with ``score`` on ``label`` and the rest on neutral."""
    return {label: score, "neutral": 1.0 - score}


# --- loading ----------------------------------------------------------------------

def test_example_policy_loads():
    policy = load_policy()
    assert policy.source == str(EXAMPLE_POLICY)
    assert policy.default == "everyday-picks"
    assert policy.dwell_seconds == 3 and policy.hysteresis == 0.1 and policy.smoothing == 0.3
    assert [r.show for r in policy.rules] == ["summer-sale", "comfort-playlist", "quiet-ui", "wow-trailer"]
    assert policy.rules[1].moods == ("sad", "fear")
    assert all(r.show in policy.items for r in policy.rules)
    assert policy.items["summer-sale"]["theme"]["accent"] == "#e0a000"  # app fields pass through


def test_json_policy_is_equivalent_to_yaml(tmp_path):
    path = write_policy(tmp_path, EXAMPLE, "policy.json")
    from_json = load_policy(path)
    assert from_json.source == str(path)
    assert from_json.to_dict() == load_policy().to_dict()


def test_to_dict_round_trips(tmp_path):
    policy = load_policy()
    again = load_policy(write_policy(tmp_path, policy.to_dict()))
    assert again.to_dict() == policy.to_dict()


def test_a_mood_string_and_a_one_mood_list_are_the_same():
    a = parse_policy(edited(lambda d: d["rules"][0].update(when="happy")))
    b = parse_policy(edited(lambda d: d["rules"][0].update(when=["happy"])))
    assert a.rules[0] == b.rules[0]


def test_defaults_apply_when_tuning_keys_are_left_out():
    data = edited(lambda d: [d.pop(k) for k in ("dwell_seconds", "hysteresis", "smoothing", "version", "name")])
    policy = parse_policy(data)
    assert (policy.dwell_seconds, policy.hysteresis, policy.smoothing) == (4.0, 0.1, 0.3)


INVALID = [
    # (change to the example, the key the message must name, a phrase it must contain)
    (lambda d: d.update(colour="red"), "colour", "unknown key"),
    (lambda d: d["rules"][1].update(shows="quiet-ui"), "rules[1]", "unknown key shows"),
    (lambda d: d["rules"][1].update(when=["sad", "gloomy"]), "rules[1].when", "'gloomy' is not an emotion"),
    (lambda d: d["rules"][0].update(when="Happy"), "rules[0].when", "'Happy' is not an emotion"),
    (lambda d: d["rules"][2].update(when=[]), "rules[2].when", "expected a mood or a list of moods"),
    (lambda d: d["rules"][3].update(show="trailer"), "rules[3].show", "'trailer' is not one of the items"),
    (lambda d: d["rules"][0].update(min_score=1.5), "rules[0].min_score", "out of range [0.0, 1.0]"),
    (lambda d: d["rules"][0].update(min_score=-0.1), "rules[0].min_score", "out of range"),
    (lambda d: d["rules"][0].update(min_score="high"), "rules[0].min_score", "expected a number"),
    (lambda d: d["rules"][0].pop("min_score"), "rules[0].min_score", "required"),
    (lambda d: d["rules"].__setitem__(0, "happy"), "rules[0]", "expected a mapping"),
    (lambda d: d.pop("items"), "items", "non-empty mapping"),
    (lambda d: d.update(items={}), "items", "non-empty mapping"),
    (lambda d: d["items"].update({"bare": {"kind": "ad"}}), "items.bare", "'title' string"),
    (lambda d: d.pop("rules"), "rules", "non-empty list of rules is required"),
    (lambda d: d.update(rules=[]), "rules", "non-empty list of rules is required"),
    (lambda d: d.update(default="nothing"), "default", "'nothing' is not one of the items"),
    (lambda d: d.pop("default"), "default", "None is not one of the items"),
    (lambda d: d.update(version=2), "version", "policy version 1, got 2"),
    (lambda d: d.update(dwell_seconds=-1), "dwell_seconds", "out of range"),
    (lambda d: d.update(hysteresis=1), "hysteresis", "out of range [0.0, 1.0)"),
    (lambda d: d.update(smoothing=0), "smoothing", "out of range (0.0, 1.0]"),
]


@pytest.mark.parametrize("change, key, phrase", INVALID)
def test_each_validation_error_names_the_file_and_the_key(tmp_path, change, key, phrase):
    path = write_policy(tmp_path, edited(change))
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}")
    assert phrase in message


@pytest.mark.parametrize("value", [["summer-sale", "quiet-ui"], {"id": "summer-sale"}])
def test_a_list_as_show_is_a_policy_error(tmp_path, value):
    path = write_policy(tmp_path, edited(lambda d: d["rules"][1].update(show=value)))
    with pytest.raises(PolicyError, match=r"rules\[1\]\.show"):
        load_policy(path)


def test_a_list_as_default_is_a_policy_error(tmp_path):
    path = write_policy(tmp_path, edited(lambda d: d.update(default=["everyday-picks"])))
    with pytest.raises(PolicyError, match=r": default: "):
        load_policy(path)


def test_bad_yaml_names_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("version: 1\nitems: {a: {title: x}\nrules: [\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}: not valid YAML")
    assert "\n" not in str(info.value)


def test_bad_json_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"version": 1,\n "items": {"a": {"title": "x"}},\n "rules": [}\n')
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert str(info.value).startswith(f"{path}: not valid JSON (line 3")


@pytest.mark.parametrize("text, kind", [("- happy\n- sad\n", "list"), ("just words\n", "str"), ("", "NoneType")])
def test_a_policy_that_is_not_a_mapping_is_refused(tmp_path, text, kind):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=f"a policy is a mapping with items and rules, got {kind}") as info:
        load_policy(path)
    assert str(info.value).startswith(str(path))


def test_a_missing_file_names_the_file(tmp_path):
    path = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError, match="cannot read policy file") as info:
        load_policy(path)
    assert str(info.value).startswith(str(path))


def test_parse_policy_names_the_given_source():
    with pytest.raises(PolicyError, match=r"^kiosk\.yaml: rules\[0\]\.show"):
        parse_policy(edited(lambda d: d["rules"][0].update(show="x")), "kiosk.yaml")


# --- the selector ---------------------------------------------------------------

def policy(**overrides):
    """One rule per mood of interest; no smoothing, no dwell, no hysteresis unless asked."""
    data = {"default": "feed", "dwell_seconds": 0, "hysteresis": 0, "smoothing": 1,
            "items": {"feed": {"title": "Feed"}, "ad": {"title": "Ad"}, "calm": {"title": "Calm"}},
            "rules": [{"when": "happy", "min_score": 0.5, "show": "ad"},
                      {"when": ["sad", "fear"], "min_score": 0.5, "show": "calm"}]}
    data.update(overrides)
    return parse_policy(data)


def test_first_update_shows_the_matching_item_at_once():
    choice = ContentSelector(policy(dwell_seconds=10)).update(mood("happy", 0.9), t=0.0)
    assert (choice.item_id, choice.rule, choice.mood, choice.changed) == ("ad", 0, "happy", True)
    assert choice.item == {"title": "Ad"}
    assert choice.score == pytest.approx(0.9)


def test_first_update_without_a_match_shows_the_default():
    choice = ContentSelector(policy()).update(mood("happy", 0.2), t=0.0)
    assert (choice.item_id, choice.rule, choice.mood, choice.changed) == ("feed", None, None, True)


def test_mood_lists_add_their_scores():
    choice = ContentSelector(policy()).update({"sad": 0.3, "fear": 0.3, "happy": 0.4}, t=0.0)
    assert choice.item_id == "calm" and choice.mood == "sad+fear"
    assert choice.score == pytest.approx(0.6)


def test_dwell_time_is_respected():
    sel = ContentSelector(policy(dwell_seconds=3))
    assert sel.update(mood("happy", 0.9), t=0.0).item_id == "ad"
    early = sel.update(mood("sad", 0.9), t=2.9)
    assert early.item_id == "ad" and not early.changed
    late = sel.update(mood("sad", 0.9), t=3.0)
    assert late.item_id == "calm" and late.changed and late.since == 3.0
    # and the new item is held for the dwell time too
    assert sel.update(mood("happy", 0.9), t=5.0).item_id == "calm"
    assert sel.update(mood("happy", 0.9), t=6.0).item_id == "ad"


def shown(hysteresis: float, scores) -> list[str]:
    """The item on screen after each score (one update every 0.1 s)."""
    sel = ContentSelector(policy(hysteresis=hysteresis))
    return [sel.update(mood("happy", s), t=0.1 * i).item_id for i, s in enumerate(scores)]


def switches(items: list[str]) -> int:
    return sum(a != b for a, b in zip(items, items[1:]))


def test_hysteresis_stops_a_hovering_score_from_flickering():
    hovering = 0.5 + np.random.default_rng(0).uniform(-0.08, 0.08, 60)
    assert (hovering >= 0.5).any() and (hovering < 0.5).any()
    steady = shown(0.1, hovering)
    assert steady[-1] == "ad" and switches(steady) <= 1  # entered once, never left
    assert switches(shown(0.0, hovering)) >= 20  # without hysteresis: in and out all the time


def test_hysteresis_still_lets_a_real_change_through():
    assert shown(0.1, [0.9] * 3 + [0.2] * 3) == ["ad"] * 3 + ["feed"] * 3
    sel = ContentSelector(policy(hysteresis=0.1))
    sel.update(mood("happy", 0.9), t=0)
    assert sel.update(mood("happy", 0.45), t=1).item_id == "ad"  # above 0.5 - 0.1: stays
    assert sel.update(mood("happy", 0.35), t=2).item_id == "feed"  # below it: leaves


def test_a_challenger_must_beat_the_shown_rule_by_the_hysteresis():
    sel = ContentSelector(policy(hysteresis=0.1))
    assert sel.update({"happy": 0.55, "sad": 0.45}, t=0).item_id == "ad"
    assert sel.update({"happy": 0.5, "sad": 0.55}, t=1).item_id == "ad"  # sad leads by 0.05 only
    assert sel.update({"happy": 0.45, "sad": 0.55}, t=2).item_id == "calm"  # by 0.1: switch


def test_smoothing_delays_a_sudden_change():
    sel = ContentSelector(policy(smoothing=0.3))
    assert sel.update(mood("happy", 0.1), t=0).item_id == "feed"
    first = sel.update(mood("happy", 0.9), t=1)  # 0.3 * 0.9 + 0.7 * 0.1 = 0.34
    assert first.item_id == "feed"
    items = [sel.update(mood("happy", 0.9), t=2 + i).item_id for i in range(5)]
    assert items[-1] == "ad"


def test_none_scores_change_nothing():
    sel = ContentSelector(policy(smoothing=0.5))
    shown = sel.update(mood("happy", 0.8), t=0)
    for t in (1, 2, 3):
        same = sel.update(None, t=t)
        assert (same.item_id, same.rule, same.changed, same.since) == ("ad", 0, False, 0)
        assert same.score == pytest.approx(shown.score)
    # the smoothing state is untouched: the same as a selector that never saw the Nones
    plain = ContentSelector(policy(smoothing=0.5))
    plain.update(mood("happy", 0.8), t=0)
    after = sel.update(mood("happy", 0.2), t=4).to_dict()
    assert after == plain.update(mood("happy", 0.2), t=4).to_dict()


def test_none_as_the_first_update_shows_the_default():
    sel = ContentSelector(policy())
    first = sel.update(None, t=0)
    assert (first.item_id, first.rule, first.changed) == ("feed", None, True)
    assert sel.update(mood("happy", 0.9), t=0.5).item_id == "ad"


def test_two_rules_showing_the_same_item_cause_no_visible_change():
    shared = policy(rules=[{"when": "happy", "min_score": 0.5, "show": "ad"},
                           {"when": "surprise", "min_score": 0.5, "show": "ad"}])
    sel = ContentSelector(shared)
    first = sel.update({"happy": 0.9, "surprise": 0.1}, t=0)
    second = sel.update({"happy": 0.1, "surprise": 0.9}, t=1)
    assert (first.rule, second.rule) == (0, 1)  # the reason changed...
    assert second.item_id == "ad" and not second.changed and second.since == 0  # ...what is shown did not


def test_reset_forgets_everything():
    sel = ContentSelector(policy(dwell_seconds=100))
    sel.update(mood("happy", 0.9), t=0)
    sel.reset()
    choice = sel.update(mood("sad", 0.9), t=1)
    assert choice.item_id == "calm" and choice.changed


def test_a_label_that_stops_arriving_fades_out():
    from moodlens.adapt import ContentSelector, parse_policy

    policy = parse_policy({"dwell_seconds": 0, "hysteresis": 0.05, "smoothing": 0.5, "default": "idle",
                           "items": {"idle": {"title": "Idle"}, "rest": {"title": "Rest"}},
                           "rules": [{"when": "calm", "min_score": 0.5, "show": "rest"}]})
    selector = ContentSelector(policy)
    assert selector.update({"calm": 0.9, "neutral": 0.1}, 0.0).item_id == "rest"  # voice says calm
    # Then only the face speaks, and a face model has no "calm": the rule must not hold for ever.
    shown = [selector.update({"neutral": 0.8, "happy": 0.2}, t).item_id for t in (1.0, 2.0, 3.0)]
    assert shown[-1] == "idle", shown
