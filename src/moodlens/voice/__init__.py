"""Speech emotion: audio loading and features (audio.py), the recogniser (recognizer.py)."""
