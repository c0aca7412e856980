"""Fusion of face and voice distributions: confidence, weighting, label
alignment by name, missing modalities and settings validation."""

from __future__ import annotations

import math

import pytest

from moodlens.fusion import FOLD, FusionSettings, confidence, fuse
from moodlens.labels import FER_EMOTIONS, VOICE_EMOTIONS


def dist(labels, **values) -> dict[str, float]:
    """A distribution over ``labels``: the given values, the rest of the mass spread evenly."""
    rest = [l for l in labels if l not in values]
    left = 1.0 - sum(values.values())
    return {l: values.get(l, left / len(rest) if rest else 0.0) for l in labels}


def face(**values):
    return dist(FER_EMOTIONS, **values)


def voice(**values):
    return dist(VOICE_EMOTIONS, **values)


# --- confidence -------------------------------------------------------------------

def test_confidence_is_0_for_uniform_and_1_for_one_hot():
    assert confidence(dist(FER_EMOTIONS)) == pytest.approx(0.0, abs=1e-9)
    assert confidence(dist(VOICE_EMOTIONS)) == pytest.approx(0.0, abs=1e-9)
    assert confidence(face(happy=1.0)) == pytest.approx(1.0)
    peaked, flatter = confidence(face(happy=0.9)), confidence(face(happy=0.4))
    assert 0 < flatter < peaked < 1


def test_confidence_of_degenerate_inputs_is_0():
    assert confidence({}) == 0.0
    assert confidence({"happy": 1.0}) == 0.0  # one label: nothing to be sure against
    assert confidence({"happy": 0.0, "sad": 0.0}) == 0.0


# --- weighting --------------------------------------------------------------------

def test_a_sure_modality_dominates_an_unsure_one():
    sure_face, unsure_voice = face(happy=0.9), voice(sad=0.2)
    fused = fuse(sure_face, unsure_voice)
    assert fused.label == "happy"
    assert fused.modalities == ["face", "voice"]
    assert fused.weights["face"] > 0.8 > fused.weights["voice"]
    assert fused.confidence["face"] > fused.confidence["voice"]

    # the other way round: the voice is sure, the face is not
    fused = fuse(face(happy=0.2), voice(angry=0.9))
    assert fused.label == "angry"
    assert fused.weights["voice"] > fused.weights["face"]


def test_effective_weights_are_proportional_to_confidence():
    f, v = face(happy=0.7), voice(angry=0.5)
    fused = fuse(f, v)
    ratio = fused.weights["face"] / fused.weights["voice"]
    assert ratio == pytest.approx(confidence(f) / confidence(v), rel=1e-6)
    assert sum(fused.weights.values()) == pytest.approx(1.0)


def test_without_confidence_the_plain_weights_are_used():
    fused = fuse(face(happy=0.9), voice(sad=0.2), FusionSettings(use_confidence=False))
    assert fused.weights == {"face": pytest.approx(0.5), "voice": pytest.approx(0.5)}
    fused = fuse(face(happy=0.9), voice(sad=0.2), FusionSettings(face_weight=1, voice_weight=3,
                                                                  use_confidence=False))
    assert fused.weights == {"face": pytest.approx(0.25), "voice": pytest.approx(0.75)}


def test_two_flat_distributions_fall_back_to_the_configured_weights():
    fused = fuse(dist(FER_EMOTIONS), dist(FER_EMOTIONS), FusionSettings(face_weight=3, voice_weight=1))
    assert fused.weights == {"face": pytest.approx(0.75), "voice": pytest.approx(0.25)}


def test_voice_weight_0_gives_the_face_alone():
    f = face(sad=0.6)
    fused = fuse(f, voice(angry=0.99), FusionSettings(voice_weight=0))
    assert fused.label == "sad"
    assert fused.modalities == ["face"]
    assert fused.scores == pytest.approx(f)
    assert fused.weights == {"face": 1.0}
    assert any(n.startswith("voice") for n in fused.notes)


def test_configured_weights_shift_the_result():
    # face happy, voice angry, equally sure: the heavier modality wins
    f, v = face(happy=0.8), dist(FER_EMOTIONS, angry=0.8)
    assert fuse(f, v, FusionSettings(face_weight=2)).label == "happy"
    assert fuse(f, v, FusionSettings(voice_weight=2)).label == "angry"


# --- label alignment --------------------------------------------------------------

def test_voice_calm_folds_into_neutral_when_both_are_present():
    assert FOLD["calm"] == "neutral"
    f, v = face(neutral=0.3, happy=0.3), voice(calm=0.6, neutral=0.1)
    fused = fuse(f, v)
    assert "calm" not in fused.scores
    assert set(fused.scores) == set(FER_EMOTIONS)
    w = fused.weights
    expected_neutral = w["face"] * f["neutral"] + w["voice"] * (v["neutral"] + v["calm"])
    assert fused.scores["neutral"] == pytest.approx(expected_neutral)
    assert fused.label == "neutral"


def test_labels_are_aligned_by_name_not_position():
    # the same distribution in a different key order fuses to the same result
    v = voice(angry=0.7)
    reordered = dict(reversed(list(v.items())))
    a, b = fuse(face(happy=0.5), v), fuse(face(happy=0.5), reordered)
    assert a.scores == pytest.approx(b.scores)
    assert a.label == b.label == "angry"


def test_contempt_folds_into_disgust_when_both_are_present():
    labels = FER_EMOTIONS + ("contempt",)  # a FER+-style face model
    f = dist(labels, contempt=0.8)
    fused = fuse(f, voice(disgust=0.1), FusionSettings(use_confidence=False))
    assert "contempt" not in fused.scores
    assert fused.label == "disgust"


def test_a_single_modality_keeps_its_own_labels():
    v = voice(calm=0.7)
    fused = fuse(None, v)
    assert fused.label == "calm"
    assert fused.scores == pytest.approx(v)
    labels = FER_EMOTIONS + ("contempt",)
    f = dist(labels, contempt=0.7)
    fused = fuse(f, None)
    assert fused.label == "contempt"
    assert set(fused.scores) == set(labels)


# --- missing modalities -----------------------------------------------------------

@pytest.mark.parametrize("missing", [None, {}])
def test_a_missing_voice_leaves_the_face_alone_with_a_note(missing):
    f = face(surprise=0.5)
    fused = fuse(f, missing)
    assert fused.label == "surprise"
    assert fused.modalities == ["face"]
    assert fused.weights == {"face": 1.0}
    assert fused.notes == ["voice not used: face alone"]


def test_a_missing_face_leaves_the_voice_alone_with_a_note():
    fused = fuse(None, voice(fear=0.5))
    assert fused.label == "fear"
    assert fused.modalities == ["voice"]
    assert fused.notes == ["face not used: voice alone"]


def test_a_callers_note_about_the_missing_modality_is_not_repeated():
    fused = fuse(face(happy=0.5), None, notes=["voice failed (clip.wav: empty file)"])
    assert fused.notes == ["voice failed (clip.wav: empty file)"]


def test_both_missing_gives_no_label():
    fused = fuse(None, None)
    assert fused.label is None
    assert fused.score == 0.0
    assert fused.scores == {} and fused.modalities == []
    assert "no modality gave a result" in fused.notes
    assert fused.to_dict()["label"] is None


# --- scores ---------------------------------------------------------------------

@pytest.mark.parametrize("settings", [FusionSettings(), FusionSettings(use_confidence=False),
                                      FusionSettings(face_weight=0.3, voice_weight=2.5)])
def test_fused_scores_sum_to_1(settings):
    for f, v in [(face(happy=0.6), voice(calm=0.5)), (face(sad=0.9), voice(sad=0.9)),
                 (dist(FER_EMOTIONS), voice(angry=0.4)), (face(neutral=0.5), None), (None, voice(calm=0.3))]:
        fused = fuse(f, v, settings)
        assert sum(fused.scores.values()) == pytest.approx(1.0)
        assert fused.score == max(fused.scores.values())
        assert fused.scores[fused.label] == fused.score


def test_to_dict_is_plain_json():
    import json

    d = fuse(face(happy=0.6), voice(calm=0.5)).to_dict()
    assert json.loads(json.dumps(d)) == d
    assert set(d) == {"label", "score", "scores", "modalities", "weights", "confidence", "notes"}


# --- settings -------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, phrase", [
    ({"face_weight": -1}, "face_weight must be a number >= 0, got -1"),
    ({"voice_weight": math.nan}, "voice_weight must be a number >= 0, got nan"),
    ({"voice_weight": math.inf}, "voice_weight must be a number >= 0"),
    ({"face_weight": "1"}, "face_weight must be a number >= 0, got '1'"),
    ({"face_weight": 0, "voice_weight": 0}, "cannot both be 0"),
    ({"fold": {"calm": "relaxed"}}, "fold 'calm' -> 'relaxed': both must be canonical labels"),
    ({"fold": {"bored": "neutral"}}, "fold 'bored' -> 'neutral'"),
])
def test_invalid_settings_raise_a_clear_value_error(kwargs, phrase):
    with pytest.raises(ValueError) as info:
        FusionSettings(**kwargs)
    assert phrase in str(info.value)
