"""Exceptions a user can act on. Each message names the file and the problem."""

from __future__ import annotations


class MoodlensError(Exception):
    """Base class: anything moodlens raises on purpose."""


class DataError(MoodlensError, ValueError):
    """A data file or folder is missing, unreadable or malformed."""


class InputError(MoodlensError, ValueError):
    """An input to predict (image, audio, video) cannot be used."""


class NoSpeechError(InputError):
    """Audio that holds no speech to classify (silence, music, noise)."""


class ModelError(MoodlensError, ValueError):
    """A model file is missing, of the wrong kind, or its metadata is incomplete."""


class MissingExtraError(MoodlensError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


def require(module: str, extra: str):
    """Import ``module`` or raise an error that says which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{module} is needed for this; install it with: pip install 'moodlens[{extra}]'"
        ) from exc
