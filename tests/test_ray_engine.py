"""`moodlens face --engine ray` and moodlens.ray on a local Ray instance.

The tests that start Ray are marked ``distributed`` (left out of the default
run; `python -m pytest -m distributed tests/test_ray_engine.py` runs them).
The instance is started once for the module, bound to 127.0.0.1, with two
CPUs, a 100 MB object store and no dashboard, and shut down after. Skipped
where ray is not installed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from moodlens.cli import main

from conftest import MEDIA, need

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
import moodlens.ray as mray  # after the importorskip: it needs ray

ROOT = Path(__file__).resolve().parents[1]


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Good photos (one face, three faces), a corrupt JPEG, a picture without a
    face, and a second obama_small.jpg in a subfolder (same output stem)."""
    d = tmp_path_factory.mktemp("photos")
    (d / "sub").mkdir()
    for name in ("obama_small.jpg", "2008_002506.jpg", "two_people.jpg"):
        (d / name).write_bytes(need(MEDIA / name).read_bytes())
    (d / "sub" / "obama_small.jpg").write_bytes((MEDIA / "obama_small.jpg").read_bytes())
    (d / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    cv2.imwrite(str(d / "blank.png"), np.full((120, 160), 128, np.uint8))
    return d


@pytest.fixture(scope="module")
def local_run(photos, face_model, tmp_path_factory):
    """The local engine's stdout and outputs for ``photos``: what Ray must match."""
    out = tmp_path_factory.mktemp("local") / "out"
    proc = subprocess.run([sys.executable, "-m", "moodlens", "face", str(photos), "--model", face_model,
                           "--format", "json", "--save-dir", str(out)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 1, proc.stderr  # broken.jpg
    return proc.stdout, out


@pytest.fixture(scope="module")
def cluster():
    with mray.session(cpus=2, object_store_mb=100):
        yield ray.nodes()


# ---- a Ray instance of the command's own --------------------------------------------------------


@pytest.mark.distributed
def test_command_starts_its_own_instance_and_matches_local(photos, face_model, local_run, tmp_path):
    # In a subprocess: the command starts Ray itself (no --address), shuts it
    # down, and says nothing but moodlens's own lines on stderr.
    stdout, local_out = local_run
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "moodlens", "face", str(photos), "--model", face_model,
                           "--format", "json", "--save-dir", str(out), "--engine", "ray", "--workers", "1"],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == stdout
    assert files_of(out) == files_of(local_out)
    assert "Traceback" not in proc.stderr and "1 of 6 inputs failed" in proc.stderr


# ---- on the module's instance ------------------------------------------------------------------


@pytest.mark.distributed
def test_instance_is_local_only(cluster):
    assert [n["NodeManagerAddress"] for n in cluster if n["Alive"]] == ["127.0.0.1"]
    assert ray.cluster_resources()["CPU"] == 2


@pytest.mark.distributed
def test_outputs_equal_local_byte_for_byte(cluster, photos, face_model, local_run, tmp_path, capsys):
    stdout, local_out = local_run
    out = tmp_path / "out"
    code, got, err = run_cli(capsys, "face", photos, "--model", face_model, "--format", "json", "--save-dir", out,
                             "--engine", "ray")
    assert code == 1 and "1 of 6 inputs failed" in err
    assert got == stdout  # same lines, same order: input order
    lines = [json.loads(line) for line in got.splitlines()]
    by_source = {}
    for line in lines:
        by_source.setdefault(Path(line["source"]).relative_to(photos).as_posix(), []).append(line)
    assert [f["status"] for f in by_source["broken.jpg"]] == ["error"]
    assert [f["status"] for f in by_source["blank.png"]] == ["no_face"]
    assert len(by_source["2008_002506.jpg"]) == 3 and len(by_source["sub/obama_small.jpg"]) == 1
    # annotated copies and sidecars, the same bytes; two obama_small.jpg -> two stems
    assert files_of(out) == files_of(local_out)
    assert {f"{photos.name}_obama_small_moodlens.jpg", "sub_obama_small_moodlens.jpg"} <= set(files_of(out))

    # resume: a rerun redoes nothing and prints the same, in every format, like the local engine
    for fmt in ("json", "csv", "table"):
        mtimes = {p: p.stat().st_mtime_ns for p in out.iterdir()}
        code, again, err = run_cli(capsys, "face", photos, "--model", face_model, "--format", fmt, "--save-dir", out,
                                   "--engine", "ray")
        code_l, local, _ = run_cli(capsys, "face", photos, "--model", face_model, "--format", fmt,
                                   "--save-dir", local_out)
        assert (code, again) == (code_l, local) and code == 1
        assert "note: 5 images already done" in err
        assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes


@pytest.mark.distributed
def test_ray_client_address(cluster, photos, face_model, local_run, tmp_path):
    # A Ray Client server in front of the module's instance, on 127.0.0.1 (in
    # "legacy" mode: it serves the client itself, no per-client process to
    # start); the command connects to it as from another machine (ray://).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # token auth is on (Ray's default for a local instance); 127.0.0.1 must stay 127.0.0.1
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "token", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    server = subprocess.Popen([sys.executable, "-m", "ray.util.client.server", "--address",
                               ray.get_runtime_context().gcs_address, "--host", "127.0.0.1", "--port", str(port),
                               "--mode", "legacy"], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "Ray Client server did not start"
                time.sleep(0.5)
        stdout, local_out = local_run
        out = tmp_path / "out"
        proc = subprocess.run([sys.executable, "-m", "moodlens", "face", str(photos), "--model", face_model,
                               "--format", "json", "--save-dir", str(out), "--engine", "ray",
                               "--address", f"ray://127.0.0.1:{port}"],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 1, proc.stderr
        assert proc.stdout == stdout and files_of(out) == files_of(local_out)
        assert "Traceback" not in proc.stderr
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server (its own process group)
        server.wait(timeout=30)


@pytest.mark.distributed
def test_killed_worker_loses_nothing_and_duplicates_nothing(cluster, face_model, tmp_path, capsys, monkeypatch,
                                                            media):
    # 24 images in two batches (16 + 8) on two workers; the worker that reaches
    # img_10.jpg ends abruptly (os._exit) the first time. Ray starts it again and
    # reruns its batch: images 0-9 are found done (their sidecars), 10-15 are made.
    folder = tmp_path / "many"
    folder.mkdir()
    face, blank = (media / "obama_small.jpg").read_bytes(), np.full((80, 80), 200, np.uint8)
    for i in range(24):
        if i % 3:
            (folder / f"img_{i:02d}.jpg").write_bytes(face)
        else:
            cv2.imwrite(str(folder / f"img_{i:02d}.png"), blank)
    marker = tmp_path / "crashed"
    monkeypatch.setattr(mray, "RUNTIME_ENV", {"env_vars": {mray.TEST_CRASH_ENV: f"{marker}::img_10.jpg"}})
    code, got, err = run_cli(capsys, "face", folder, "--model", face_model, "--format", "json",
                             "--save-dir", tmp_path / "ray", "--engine", "ray", "--workers", 2)
    assert marker.exists(), "the worker was not killed"
    assert code == 0, err
    assert "note: 10 images already done" in err  # the rerun batch: what the dead worker had finished
    monkeypatch.setattr(mray, "RUNTIME_ENV", None)
    code, expected, _ = run_cli(capsys, "face", folder, "--model", face_model, "--format", "json",
                                "--save-dir", tmp_path / "local")
    assert code == 0 and got == expected
    sources = [json.loads(line)["source"] for line in got.splitlines()]
    assert sorted(sources) == sorted(str(p) for p in folder.iterdir())  # each exactly once
    assert files_of(tmp_path / "ray") == files_of(tmp_path / "local")


@pytest.mark.distributed
def test_videos_run_as_tasks_and_resume(cluster, face_model, tmp_path, capsys, media):
    # a short clip of the shared face video: one task, the video code path, resume by its summary
    cap = cv2.VideoCapture(str(need(MEDIA / "mixkit-girl-smiling-portrait-in-the-library-4756-hd-ready.mp4")))
    frames = [cv2.resize(cap.read()[1], (320, 180), interpolation=cv2.INTER_AREA) for _ in range(8)]
    cap.release()
    clip = tmp_path / "in" / "clip.avi"
    clip.parent.mkdir()
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (320, 180))
    for f in frames:
        writer.write(f)
    writer.release()
    (tmp_path / "in" / "photo.jpg").write_bytes((media / "obama_small.jpg").read_bytes())
    out = tmp_path / "out"
    args = ("face", tmp_path / "in", "--model", face_model, "--format", "json", "--save-dir", out, "--no-plot",
            "--engine", "ray")
    code, got, err = run_cli(capsys, *args)
    assert code == 0, err
    image, video = [json.loads(line) for line in got.splitlines()]  # images first, then videos
    assert image["source"].endswith("photo.jpg") and video["source"].endswith("clip.avi")
    assert video["complete"] and video["frames"] == 8 and len(video["tracks"]) == 1
    assert (out / "clip_summary.json").is_file() and (out / "clip_moodlens.mp4").is_file()
    code, again, _ = run_cli(capsys, *args)
    assert code == 0 and json.loads(again.splitlines()[1]).get("skipped")


@pytest.mark.distributed
def test_predict_faces_on_a_dataset_of_binary_files(cluster, photos, face_model):
    from moodlens.face.recognizer import FaceRecognizer

    ds = ray.data.read_binary_files(str(photos), include_paths=True)
    rows = sorted(mray.predict_faces(ds, model=face_model, workers=1).iter_rows(), key=lambda r: r["path"])
    assert "bytes" not in rows[0]
    rec = FaceRecognizer(model=face_model)
    by_name = {}
    for row in rows:
        name = Path(row["path"]).name if "sub" not in Path(row["path"]).parts else "sub/obama_small.jpg"
        by_name[name] = row
        expected = rec.predict_file(row["path"])
        assert mray.result_of(row).to_record() == expected.to_record()
        assert row["faces"] == len(expected.faces)
    assert by_name["broken.jpg"]["status"] == "error" and "not a readable image" in by_name["broken.jpg"]["error"]
    assert by_name["blank.png"]["status"] == "no_face" and by_name["2008_002506.jpg"]["faces"] == 3


@pytest.mark.distributed
def test_cluster_without_moodlens_is_one_clear_error(cluster, photos, face_model, tmp_path, capsys, monkeypatch):
    # The workers' PYTHONPATH puts a "moodlens" first that cannot be imported,
    # as on nodes where it was never installed.
    fake = tmp_path / "site" / "moodlens"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'moodlens'\", name='moodlens')\n")
    monkeypatch.setattr(mray, "RUNTIME_ENV", {"env_vars": {"PYTHONPATH": str(fake.parent)}})
    code, out, err = run_cli(capsys, "face", photos, "--model", face_model, "--engine", "ray")
    assert code == 2 and out == ""
    assert err.startswith("error: moodlens is not installed on the Ray cluster") and "pip install" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.distributed
def test_other_moodlens_version_on_the_workers(cluster, photos, face_model, capsys, monkeypatch):
    monkeypatch.setattr(mray, "__version__", "0.0.0-driver")
    code, _, err = run_cli(capsys, "face", photos, "--model", face_model, "--engine", "ray")
    assert code == 2 and "has moodlens 0.1.0, this machine 0.0.0-driver" in err and "Traceback" not in err


@pytest.mark.distributed
def test_worker_that_cannot_start_is_one_clear_error(cluster, face_model):
    # e.g. a node that does not mount the folder moodlens was started in, while the paths are relative
    actor = ray.remote(mray.FacePredictor).options(num_cpus=1).remote(model=face_model, cwd="/no/such/folder",
                                                                      need_cwd=True)
    with pytest.raises(mray.RayEngineError, match=r"^a Ray worker failed to start: a Ray worker on .* cannot see "
                                                  r"/no/such/folder, the folder moodlens was started in"):
        mray._wait_ready([actor])


# ---- usage errors: no Ray instance needed ----------------------------------------------------


@pytest.mark.parametrize("address, message", [
    ("garbage", "--address 'garbage': expected 'auto'"),
    ("10.0.0.1:6379", "expected 'auto'"),
    ("ray://127.0.0.1:1", "cannot reach a Ray cluster at ray://127.0.0.1:1: Connection refused"),
    ("ray://no-such-host.invalid:10001", "cannot reach a Ray cluster at ray://no-such-host.invalid:10001"),
])
def test_bad_address_is_one_clear_error(photos, face_model, capsys, address, message):
    code, out, err = run_cli(capsys, "face", photos, "--model", face_model, "--engine", "ray", "--address", address)
    assert code == 2 and out == "" and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
