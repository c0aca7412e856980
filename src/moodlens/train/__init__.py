"""Training, export and tuning. Needs the ``[train]`` extra (torch).

torch is imported only under this package; the rest of moodlens runs on
numpy + OpenCV + ONNX Runtime.
"""

from ..errors import require as _require

_require("torch", "train")
