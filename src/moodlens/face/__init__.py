"""Face half: detectors (boxes only) and the recogniser (detect -> crop -> classify)."""
