"""The moodlens web service and browser page (``pip install 'moodlens[serve]'``)."""

from .app import ServeSettings, create_app

__all__ = ["ServeSettings", "create_app"]
