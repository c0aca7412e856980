"""The moodlens web service and browser page (the [serve] extra)."""

from .app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
