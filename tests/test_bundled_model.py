"""The bundled face model ships with its card and is the one the README describes."""

from __future__ import annotations

import json

import pytest

from moodlens.cli import main
from moodlens.labels import FER_EMOTIONS
from moodlens.registry import available_models, load_model, model_card

from conftest import BUNDLED_FACE, ROOT


@pytest.fixture(scope="module")
def card():
    if not BUNDLED_FACE.exists():
        pytest.skip("bundled model not built yet")
    return model_card("face-resnet")


def test_default_model_loads_with_metadata(card):
    model = load_model("default", task="face")
    assert model.labels == FER_EMOTIONS
    assert model.meta["card"]["name"] == card["name"]
    assert "face-resnet" in available_models("face")


def test_card_has_data_terms_metrics_and_recipe(card):
    assert "FER-2013" in card["data_terms"]
    ev = card["evaluation"]
    assert set(ev["per_class"]) == set(FER_EMOTIONS)
    assert ev["data"].endswith("(PublicTest, 3589 images)")
    assert card["reproduce"].startswith("moodlens export face")
    assert BUNDLED_FACE.stat().st_size <= 10_000_000
    assert BUNDLED_FACE.with_suffix(".md").exists()


def test_readme_quotes_the_card(card):
    readme = (ROOT / "README.md").read_text()
    assert f"{card['evaluation']['accuracy'] * 100:.1f}%" in readme


def test_models_command_lists_it(capsys, card):
    assert main(["models"]) == 0
    assert "face-resnet (default)" in capsys.readouterr().out
    assert main(["models", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["face-resnet"]["name"] == card["name"]
