"""The core package works without the [train] extra: no torch on the inference path."""

from __future__ import annotations

import subprocess
import sys

BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'tensorflow', 'sklearn', 'matplotlib'}:
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, Block())
"""


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, timeout=120)


def test_core_imports_and_classifies_without_torch(face_model):
    code = f"""
import numpy as np, moodlens
rec = moodlens.FaceRecognizer(model={face_model!r})
print(rec.predict(np.zeros((48, 48), np.uint8), detect=False)[0].label)
"""
    result = run(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def test_training_without_torch_names_the_extra():
    result = run("import moodlens.train")
    assert result.returncode != 0
    assert "pip install 'moodlens[train]'" in result.stderr


def test_ray_engine_without_ray_names_the_extra(tmp_path, face_model):
    photo = tmp_path / "gray.png"
    photo.write_bytes(bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010800000000"
                                    "3a7e9b550000000a49444154789c63600000000200015e2f6b0e0000000049454e44ae426082"))
    code = f"""
class BlockRay:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] == 'ray':
            raise ImportError('blocked for this test: ' + name)
sys.meta_path.insert(0, BlockRay())
from moodlens.cli import main
sys.exit(main(["face", {str(photo)!r}, "--model", {face_model!r}, "--engine", "ray"]))
"""
    result = run(code)
    assert result.returncode == 2, result.stderr
    assert "pip install 'moodlens[ray]'" in result.stderr and "Traceback" not in result.stderr
