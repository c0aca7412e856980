"""Faces in many images and videos on a Ray cluster (the ``[ray]`` extra).

Ray does the scheduling, the retries and the moving of data; moodlens adds
only the work itself: :class:`FacePredictor` holds one
:class:`~moodlens.face.recognizer.FaceRecognizer` per Ray worker (made once,
when the worker starts) and runs, for each input, the very code the local
engine runs (:func:`moodlens.image_batch.process_image` for an image,
:func:`moodlens.video.batch.process_one` for a video), so the outputs on disk
and the results are the same.

- :func:`predict_faces` maps a Ray Dataset you already hold (a ``path``
  column, and ``bytes`` if the files were read already, e.g. by
  ``ray.data.read_binary_files(..., include_paths=True)``) to one result row
  per file: ``map_batches`` with :class:`FacePredictor` as its callable class.
- :func:`run_files` is ``moodlens face --engine ray``: batches of files on a
  pool of :class:`FacePredictor` actors (Ray's ``ActorPool``), each result
  handed back in input order. It uses Ray core, not Ray Data, because Ray
  Data's executor cannot run through Ray Client (``ray://``).
- :func:`session` connects to a cluster (``auto``, ``ray://HOST:PORT``) or
  starts a Ray instance on this machine bound to 127.0.0.1, and
  :func:`check_workers` makes sure every node imports the same moodlens.

Results are keyed by input index: a worker that dies mid-batch is restarted
by Ray and its batch run again (``max_task_retries``); the driver keeps one
result per index, so nothing is lost and nothing is printed twice. Images the
dead worker had finished are found done by their sidecars (with a save
folder) and not redone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import ray
import ray.data

from . import __version__
from .errors import MoodlensError

__all__ = ["FacePredictor", "RayEngineError", "check_workers", "predict_faces", "result_of", "run_files", "session"]

BATCH_SIZE = 16  # images per Ray task: amortises the per-task cost, bounds the work a crash redoes
TASK_RETRIES = 3  # times a batch is run again after its worker died (Ray restarts the worker)
LOCAL_OBJECT_STORE_MB = 200  # results are small JSON strings; Ray's default would reserve 30% of RAM
CLIENT_PORT = 10001  # Ray Client's default port on the head node
PROBE_TIMEOUT_S = 120  # worker processes (and any runtime_env) must be up by then

# Tests only: "MARKER::NAME" makes a worker process end abruptly (os._exit) the
# first time it is about to process a file named NAME, creating MARKER so the
# retry goes through. Lets a test kill a worker mid-job at a known point.
TEST_CRASH_ENV = "MOODLENS_TEST_RAY_CRASH_ONCE"

# runtime_env for the jobs moodlens starts (None: the workers' own environment).
# Tests set it to change what the workers see; a program may use it to ship
# moodlens to a cluster, e.g. {"pip": ["moodlens[ray]==0.1.0"]}.
RUNTIME_ENV: dict | None = None


class RayEngineError(MoodlensError, RuntimeError):
    """The cluster cannot be reached, or its workers cannot run moodlens."""


# ---- connecting ------------------------------------------------------------------------------


def _check_address(address: str) -> None:
    """Fail fast, with one clear line, where ``ray.init`` would wait (30 s for
    Ray Client) or hang (a GCS address that does not answer)."""
    if address == "auto":
        return
    if not address.startswith("ray://"):
        raise RayEngineError(f"--address {address!r}: expected 'auto' (the cluster this machine is part of) or "
                             f"ray://HOST:PORT (Ray Client, port {CLIENT_PORT} by default)")
    host, _, port = address[len("ray://"):].rstrip("/").rpartition(":")
    if not host:
        host, port = port, str(CLIENT_PORT)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RayEngineError(f"--address {address!r}: expected ray://HOST:PORT")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=5):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__  # a timeout has no strerror
        raise RayEngineError(f"cannot reach a Ray cluster at {address}: {reason}") from None


def _quiet_ray() -> None:
    """Ray's own INFO lines, progress bars and warnings would mix with
    moodlens's output on stderr; errors still come through."""
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    warnings.filterwarnings("ignore", module=r"ray(\.|$)")


@contextlib.contextmanager
def session(address: str | None = None, *, cpus: int | None = None,
            object_store_mb: int = LOCAL_OBJECT_STORE_MB) -> Iterator[None]:
    """Ray for the length of the ``with`` block.

    ``address=None`` starts a Ray instance on this machine (``cpus`` CPUs,
    default all), reachable only from it, and shuts it down at the end; if
    this process is connected to Ray already, that connection is used and left
    open. ``"auto"`` joins the cluster this machine is part of (or
    ``RAY_ADDRESS``); ``"ray://HOST:PORT"`` connects through Ray Client.
    Raises :class:`RayEngineError` with one line saying what is wrong."""
    if address is None and ray.is_initialized():
        _quiet_ray()
        yield
        return
    if address is not None:
        _check_address(address)
    if ray.is_initialized():
        raise RayEngineError("this process is connected to Ray already; leave out --address to use that connection")
    _quiet_ray()
    try:
        if address is None:
            with _loopback_only():
                ray.init(num_cpus=cpus or os.cpu_count() or 2, object_store_memory=object_store_mb * 2**20,
                         include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    except Exception as exc:  # whatever Ray raises (ConnectionError, auth, timeouts): one line, no traceback
        where = "start a local Ray instance" if address is None else f"connect to Ray at {address}"
        raise RayEngineError(f"cannot {where}: {_first_line(exc)}") from None
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _loopback_only():
    # Ray's own switch for a machine-local instance (its default on macOS and
    # Windows): the node's address becomes 127.0.0.1, and Ray's servers listen
    # there instead of on every interface. A private constant, hence the guard.
    try:
        from ray._private import ray_constants
    except ImportError:
        yield
        return
    saved = getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _make_probe():
    # Defined inside a function so cloudpickle ships the code itself: a worker
    # without moodlens can run it and say so, instead of failing to unpickle.
    def probe() -> dict:
        import platform
        import sys

        try:
            import moodlens
        except Exception as exc:  # ImportError, or moodlens's own imports failing
            return {"error": f"{type(exc).__name__}: {exc}", "python": sys.executable, "host": platform.node()}
        return {"version": moodlens.__version__, "python": sys.executable, "host": platform.node()}

    return probe


def check_workers(runtime_env: dict | None = None) -> list[dict]:
    """Run a probe on every alive node with CPUs and raise :class:`RayEngineError`
    unless each imports moodlens of this very version. Returns the probes' answers."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(_make_probe())
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
    if not nodes:
        raise RayEngineError("the Ray cluster has no node with CPUs to run moodlens on")
    refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False),
                          runtime_env=runtime_env).remote() for n in nodes]
    try:
        answers = ray.get(refs, timeout=PROBE_TIMEOUT_S)
    except ray.exceptions.GetTimeoutError:
        raise RayEngineError(f"the Ray workers did not start within {PROBE_TIMEOUT_S} s") from None
    except ray.exceptions.RayError as exc:
        raise RayEngineError(f"the Ray workers cannot run moodlens: {_first_line(exc)}") from None
    for node, a in zip(nodes, answers):
        where = f"node {node.get('NodeManagerAddress')} ({a['python']})"
        if "error" in a:
            raise RayEngineError(f"moodlens is not installed on the Ray cluster: {where}: {a['error']}. Install "
                                 f"moodlens {__version__} on every node: pip install 'moodlens[ray]=={__version__}'")
        if a["version"] != __version__:
            raise RayEngineError(f"{where} has moodlens {a['version']}, this machine {__version__}: install the "
                                 "same version on every node")
    return answers


# ---- the work on the workers -----------------------------------------------------------------


def _crash_once_for_tests(name: str) -> None:
    spec = os.environ.get(TEST_CRASH_ENV)
    if not spec:
        return
    marker, _, target = spec.partition("::")
    if Path(name).name == target:
        try:
            with open(marker, "x"):
                pass
        except FileExistsError:
            return
        os._exit(1)  # like a kill -9 or the OOM killer: no cleanup, no exception


class FacePredictor:
    """``Dataset.map_batches`` callable: one recogniser per Ray worker, made in
    ``__init__``, then a result row for each input row.

    Input columns: ``path`` (required), ``bytes`` (the file's content, when
    read already), ``kind`` ("image" or "video"; default image), ``stem``
    (output name stem; default the file's). Output: the input columns except
    ``bytes``, plus ``status`` ("ok", "no_face" or "error"), ``error``,
    ``faces`` (faces found; for a video, face tracks), ``done_before`` (the
    outputs in ``save_dir`` were complete and were not redone) and ``result``:
    JSON of the image's :meth:`~moodlens.results.ImageResult.to_record` or the
    video's summary (:func:`result_of` turns a row back into an ImageResult).
    """

    def __init__(self, model: str = "default", detector: str = "blazeface", threads: int = 1, detect: bool = True,
                 save_dir: str | None = None, overwrite: bool = False, video=None, cwd: str | None = None,
                 need_cwd: bool = False, version: str | None = None):
        import moodlens

        if version is not None and moodlens.__version__ != version:
            raise RayEngineError(f"this Ray worker has moodlens {moodlens.__version__}, the driver {version}: "
                                 "install the same version on every node")
        # Relative paths (inputs, --save-dir, --model) mean what they mean where moodlens was started.
        if cwd is not None and os.path.isdir(cwd):
            os.chdir(cwd)
        elif need_cwd:
            raise RayEngineError(f"a Ray worker on {socket.gethostname()} cannot see {cwd}, the folder moodlens "
                                 "was started in: put the inputs and --save-dir on storage every node mounts at "
                                 "the same path, or give absolute paths")
        import cv2

        from .face.recognizer import FaceRecognizer

        cv2.setNumThreads(max(1, threads))
        self.recognizer = FaceRecognizer(model=model, detector=detector, threads=threads)
        self.detect, self.overwrite = detect, overwrite
        self.save_dir = None if save_dir is None else Path(save_dir)
        self.video_settings = video  # moodlens.video.batch.BatchSettings, for video rows
        self._processor = None

    def ready(self) -> bool:
        """For Ray core: returns once ``__init__`` has run (the model is loaded)."""
        return True

    def process(self, batch: dict) -> dict:
        """For Ray core (actor handles cannot call ``__call__``): same as calling."""
        return self(batch)

    def __call__(self, batch: dict) -> dict:
        paths = [str(p) for p in batch["path"]]
        n = len(paths)
        kinds = batch.get("kind", ["image"] * n)
        stems = batch.get("stem", [Path(p).stem for p in paths])
        data = batch.get("bytes", [None] * n)
        rows = [self._one(p, str(k), str(s), d) for p, k, s, d in zip(paths, kinds, stems, data)]
        out = {k: v for k, v in batch.items() if k != "bytes"}
        for i, key in enumerate(("status", "error", "faces", "done_before", "result")):
            values = [r[i] for r in rows]
            out[key] = np.array(values, dtype=object if key in ("error", "status", "result") else None)
        return out

    def _one(self, path: str, kind: str, stem: str, data) -> tuple:
        _crash_once_for_tests(path)
        if kind == "video":
            return self._video(path, stem)
        from .image_batch import process_image
        from .results import ImageResult

        try:
            result, done = process_image(self.recognizer, Path(path), stem, self.save_dir, detect=self.detect,
                                         overwrite=self.overwrite, data=data)
        except Exception as exc:  # one file's unexpected failure must not cost the batch its other files
            result, done = ImageResult(source=path, error=f"{path}: {type(exc).__name__}: {exc}"), False
        status = "error" if result.error else "ok" if result.faces else "no_face"
        return status, result.error, len(result.faces), done, json.dumps(result.to_record())

    def _video(self, path: str, stem: str) -> tuple:
        from .video.batch import BatchSettings, process_one
        from .video.pipeline import VideoProcessor

        settings = self.video_settings or BatchSettings(out_dir=self.save_dir, overwrite=self.overwrite)
        if self._processor is None:  # its own detector: video tracking keeps per-video detector state
            self._processor = VideoProcessor(self.recognizer.fork(), settings.options)
        try:
            s = process_one(self._processor, Path(path), stem, settings)
        except Exception as exc:
            s = {"source": path, "error": f"{type(exc).__name__}: {exc}"}
        status = "error" if s.get("error") else "ok" if s.get("tracks") else "no_face"
        return status, s.get("error"), len(s.get("tracks") or []), bool(s.get("skipped")), json.dumps(s)


def result_of(row: dict):
    """An image row of :class:`FacePredictor`'s output -> its ImageResult."""
    from .results import ImageResult

    return ImageResult.from_record(json.loads(row["result"]))


def _map(ds, *, workers: int, batch_size: int | None, runtime_env: dict | None, **predictor) -> ray.data.Dataset:
    common = dict(batch_size=batch_size, batch_format="numpy", fn_constructor_kwargs={**predictor, "version": __version__},
                  compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1, runtime_env=runtime_env)
    # A dead worker is started again and its batch rerun: Ray Data's default,
    # but without end (-1), so a file that kills its worker every time would
    # stall the job. Ray 2.60 calls these two arguments deprecated, with no
    # replacement yet; where they are gone, Ray's defaults apply.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return ds.map_batches(FacePredictor, **common, max_restarts=-1, max_task_retries=TASK_RETRIES)
    except TypeError:
        return ds.map_batches(FacePredictor, **common)


def _default_workers() -> int:
    if ray.is_initialized():
        return max(1, int(ray.cluster_resources().get("CPU", 0)) or 2)
    return os.cpu_count() or 2


def predict_faces(ds: ray.data.Dataset, *, model: str = "default", detector: str = "blazeface",
                  detect: bool = True, threads: int = 1, save_dir: str | Path | None = None,
                  overwrite: bool = False, workers: int | None = None, batch_size: int = BATCH_SIZE,
                  runtime_env: dict | None = None) -> ray.data.Dataset:
    """Faces and emotions for every image of a Ray Dataset (lazy, like any
    ``map_batches``).

    >>> import ray, moodlens.ray
    >>> ds = ray.data.from_items([{"path": p} for p in paths])
    >>> for row in moodlens.ray.predict_faces(ds).iter_rows():
    ...     print(row["path"], row["status"], moodlens.ray.result_of(row).faces)

    ``ds`` needs a ``path`` column; with a ``bytes`` column (e.g.
    ``ray.data.read_binary_files(src, include_paths=True)``) the workers decode
    those bytes instead of opening the path. ``save_dir`` (a folder every
    worker can write) gets the annotated copies and result sidecars of
    ``moodlens face --save-dir``, and images whose outputs are complete there
    are not redone unless ``overwrite``. ``workers``: model workers, one CPU
    each (default: the cluster's CPUs). See :class:`FacePredictor` for the
    output columns."""
    return _map(ds, workers=workers or _default_workers(), batch_size=batch_size, runtime_env=runtime_env,
                model=model, detector=detector, threads=threads, detect=detect,
                save_dir=None if save_dir is None else str(save_dir), overwrite=overwrite, cwd=os.getcwd())


# ---- moodlens face --engine ray ------------------------------------------------------------


def run_files(images: list[Path], videos: list[Path], *, model: str = "default", detector: str = "blazeface",
              threads: int = 1, detect: bool = True, save_dir: Path | None = None, overwrite: bool = False,
              video=None, workers: int | None = None, batch_size: int = BATCH_SIZE,
              on_image: Callable | None = None, on_video: Callable | None = None,
              on_progress: Callable[[int, int], None] | None = None) -> int:
    """Process files on the connected cluster: images in batches of
    ``batch_size``, each video as a task of its own, on ``workers``
    :class:`FacePredictor` actors (Ray's ``ActorPool``). Calls
    ``on_image(ImageResult, done_before)`` for the images, then
    ``on_video(summary)`` for the videos, each in input order, as soon as
    every result before it is in. Returns the number of files that got no
    result because their batch failed even after Ray's retries; they are
    reported through the callbacks as errors too.

    Ray core rather than Ray Data here: Ray Data's executor runs in the driver
    and cannot run through Ray Client (``ray://``), which this must."""
    from ray.util import ActorPool

    from .image_batch import output_stems

    kinds = ["image"] * len(images) + ["video"] * len(videos)
    paths = [str(p) for p in [*images, *videos]]
    stems = output_stems(images) + output_stems(videos)
    spans = [range(i, min(i + batch_size, len(images))) for i in range(0, len(images), batch_size)]
    spans += [range(i, i + 1) for i in range(len(images), len(paths))]
    if not spans:
        return 0
    relative = [p for p in [*images, *videos, save_dir] if p is not None and not Path(p).is_absolute()]
    model_is_path = model.endswith(".onnx") or os.sep in model
    actor = ray.remote(FacePredictor).options(
        num_cpus=1, scheduling_strategy="SPREAD", runtime_env=RUNTIME_ENV,
        # a dead worker is started again and its batch rerun (Ray's own retries)
        max_restarts=-1, max_task_retries=TASK_RETRIES)
    settings = dict(model=model, detector=detector, threads=threads, detect=detect, overwrite=overwrite, video=video,
                    save_dir=None if save_dir is None else str(save_dir), cwd=os.getcwd(), version=__version__,
                    need_cwd=bool(relative) or (model_is_path and not Path(model).is_absolute()))
    pool_size = max(1, min(workers or _default_workers(), len(spans)))
    actors = [actor.remote(**settings) for _ in range(pool_size)]
    _wait_ready(actors)

    results: dict[int, tuple] = {}  # input index -> (status, error, faces, done_before, result)
    emitted = 0
    lost = f"not processed: its Ray worker failed {TASK_RETRIES + 1} times on the batch that held it"

    def emit_ready(final: bool = False) -> None:
        nonlocal emitted
        while emitted < len(paths) and (final or emitted in results):
            row = results.pop(emitted, None)
            if emitted < len(images):
                result = _image_result(row, paths[emitted], lost)
                if on_image is not None:
                    on_image(result, bool(row and row[3]))
            elif on_video is not None:
                on_video(json.loads(row[4]) if row else {"source": paths[emitted], "error": lost})
            emitted += 1

    pool = ActorPool(actors)
    for span in spans:
        batch = {"index": list(span), "path": [paths[i] for i in span], "kind": [kinds[i] for i in span],
                 "stem": [stems[i] for i in span]}
        pool.submit(lambda a, b: a.process.remote(b), batch)
    received = 0
    while pool.has_next():
        try:
            out = pool.get_next_unordered()
        except ray.exceptions.RayError:
            # Ray gave up on this batch (its worker died every time): its files
            # are reported as lost at the end and the other batches go on. (If
            # every worker is gone for good, the pool stops handing out batches
            # and theirs are reported the same way.)
            continue
        for i, *row in zip(out["index"], out["status"], out["error"], out["faces"], out["done_before"],
                           out["result"]):
            if int(i) not in results and int(i) >= emitted:  # a result seen twice is kept once
                results[int(i)] = tuple(row)
                received += 1
        emit_ready()
        if on_progress is not None:
            on_progress(received, len(paths))
    missing = len(paths) - received
    emit_ready(final=True)
    return missing


def _image_result(row: tuple | None, path: str, lost: str):
    from .results import ImageResult

    if row is None:
        return ImageResult(source=path, error=f"{path}: {lost}")
    return ImageResult.from_record(json.loads(row[4]))


def _wait_ready(actors: list) -> None:
    """Every worker up (model loaded) before any work is handed out, so a
    worker that cannot start is one clear error, not a failed file each."""
    refs = [a.ready.remote() for a in actors]
    try:
        ready, pending = ray.wait(refs, num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
        ray.get(ready)
    except ray.exceptions.RayError as exc:
        raise RayEngineError(_worker_failure(exc)) from None
    if pending:
        raise RayEngineError(f"only {len(ready)} of {len(refs)} Ray workers started within {PROBE_TIMEOUT_S} s: "
                             "the cluster has fewer free CPUs than --workers asks for")


def _worker_failure(exc: BaseException) -> str:
    """One line for a job that Ray gave up on (a worker that cannot start):
    the moodlens error raised on the worker when there is one."""
    text = str(exc)
    for line in reversed(text.splitlines()):
        line = line.strip()
        for name in ("RayEngineError", "ModelError", "MissingExtraError", "InputError", "ModuleNotFoundError"):
            if line.startswith(name + ": ") or f".{name}: " in line:
                message = line.split(f"{name}: ", 1)[1]
                if name == "ModuleNotFoundError" and "moodlens" in message:
                    return (f"moodlens is not installed on the Ray workers ({message}): install moodlens "
                            f"{__version__} on every node")
                return f"a Ray worker failed to start: {message}"
    return f"the Ray job failed: {_first_line(exc)}"

