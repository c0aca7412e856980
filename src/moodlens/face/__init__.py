"""Face half: detectors (boxes only) and the recogniser (detect -> crop -> classify)."""

# The detector choices, for help texts (kept here so a CLI can name them without importing OpenCV).
DETECTORS = "'blazeface' (default), 'blazeface:short', 'haar' or 'yunet:PATH.onnx'"
