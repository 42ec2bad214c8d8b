"""Batch screening engine: streams one ScreenResult per file as soon as it is ready.

Pipeline (memory stays flat however large the folder):

    paths -> thread pool: load_for_model (decode, trim blank borders, resize; bounded look-ahead)
          -> batches -> compiled forward pass (or fused forward + Grad-CAM)
          -> ScreenResult per file, in input order

Decoding runs in worker threads while the model runs in the caller's thread:
OpenCV, NumPy and TensorFlow all release the GIL, so decoding is hidden behind
inference. At most `lookahead_batches` batches of prepared inputs exist at
once. TensorFlow is imported lazily (the GUI imports this module at start-up).
"""
from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np

from core.models.calibration import apply_temperature
from core.models.gradcam import onto_frame
from core.imaging.loader import ImageLoadError, LoadedImage
from core.imaging.preprocessing import FILM_PREPARATION, LOAD_MAX_SIDE_FACTOR, load_for_model
from core.screening.results import ScreenResult
from core.models.scope import metadata_reason, population_of
from core.version import software_version

_tf_lock = threading.Lock()
_device: str | None = None


def configure_tensorflow(intra_op_threads: int | None = None, inter_op_threads: int | None = None) -> str:
    """Set up TensorFlow once per process and return the device ("CPU" or "GPU: <name>").

    GPU memory growth (so the GUI and other processes can share the card) and
    thread counts only take effect before TensorFlow's runtime starts; call
    this early (before loading a model) to get them. Later calls are harmless.
    """
    global _device
    import tensorflow as tf

    with _tf_lock:
        gpus = tf.config.list_physical_devices("GPU")
        if _device is None:
            for gpu in gpus:
                try:
                    tf.config.experimental.set_memory_growth(gpu, True)
                except (RuntimeError, ValueError):
                    pass  # runtime already started (e.g. a model was loaded first)
            _device = _describe_device(tf, gpus)
        try:
            if intra_op_threads:
                tf.config.threading.set_intra_op_parallelism_threads(int(intra_op_threads))
            if inter_op_threads:
                tf.config.threading.set_inter_op_parallelism_threads(int(inter_op_threads))
        except RuntimeError:
            pass  # too late for this process; the defaults stay
        return _device


def _describe_device(tf, gpus) -> str:
    if not gpus:
        return "CPU"
    try:
        name = tf.config.experimental.get_device_details(gpus[0]).get("device_name")
    except Exception:  # details are best-effort across TF builds
        name = None
    return f"GPU: {name or gpus[0].name}"


def compile_forward(keras_model):
    """A tf.function forward pass: (N, S, S, 1) float32 -> (N,) probabilities (numpy).

    One trace for every batch size (batch dimension None); far less per-call
    overhead than model.predict.
    """
    import tensorflow as tf

    spec = tf.TensorSpec((None, *keras_model.inputs[0].shape[1:]), tf.float32)

    @tf.function(input_signature=[spec])
    def forward(x):
        return tf.reshape(keras_model(x, training=False), (-1,))

    def run(batch: np.ndarray) -> np.ndarray:
        return forward(np.asarray(batch, dtype=np.float32)).numpy().astype(np.float64)

    return run


@dataclass
class _Prepared:
    """One file, decoded and resized (or its error), waiting for inference."""
    path: str
    x: np.ndarray | None = None
    error: str | None = None
    kind: str = ""
    meta: dict = field(default_factory=dict)
    image_shape: tuple[int, int] | None = None
    content_box: tuple[float, float, float, float] | None = None  # what the model saw (None: all)


def _full_shape(loaded: LoadedImage) -> tuple[int, int]:
    """The file's full-resolution (rows, cols): the loader may have decoded it reduced."""
    meta = loaded.meta or {}
    for rows_key, cols_key in (("height", "width"), ("Rows", "Columns")):
        try:
            rows, cols = int(meta[rows_key]), int(meta[cols_key])
        except (KeyError, TypeError, ValueError):
            continue
        if rows > 0 and cols > 0:
            return rows, cols
    return tuple(int(v) for v in loaded.pixels.shape[:2])


def _prepare(path, size: int, decode=load_for_model) -> _Prepared:
    """Decode + resize one file in a worker thread; never raises."""
    try:
        x, loaded = decode(path, size)  # default: the same preparation training used
    except ImageLoadError as exc:
        return _Prepared(str(path), error=exc.message)
    except Exception as exc:  # a bad file must never stop a batch
        return _Prepared(str(path), error=f"image could not be prepared ({type(exc).__name__}: {exc})")
    return _Prepared(str(path), x=x, kind=loaded.kind, meta=loaded.meta or {}, image_shape=_full_shape(loaded),
                     content_box=getattr(loaded, "content_box", None))


def default_decode_workers() -> int:
    """Decode threads for this machine.

    A full-resolution JPEG costs about 80% of the CPU time MobileNetV2 needs
    per image (7 vs 8.5 ms on one core), so on a CPU about 40% of the cores
    decode and the rest run TensorFlow. On a GPU decoding is the bottleneck:
    use every core (up to 8).
    """
    cpus = os.cpu_count() or 2
    if _device is not None and _device.startswith("GPU"):
        return max(1, min(8, cpus))
    return max(1, round(cpus * 0.4))


def configure_for_screening() -> str:
    """For processes that only screen (CLI, benchmark): split the CPU cores.

    On a CPU, TensorFlow gets the cores the decode threads do not use, so the
    two never fight over a core (a parallel op waits for its slowest thread).
    Not for the GUI, which also trains in-process and wants every core then.
    """
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return configure_tensorflow()
    cpus = os.cpu_count() or 2
    return configure_tensorflow(intra_op_threads=max(1, cpus - default_decode_workers()))


class Screener:
    """Screens files with one registered model (a core.models.registry.LoadedModel)."""

    def __init__(self, loaded_model, threshold: float | None = None, batch_size: int = 16,
                 gradcam: bool = False, decode_workers: int | None = None, lookahead_batches: int = 3,
                 decode=None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        threshold = loaded_model.threshold if threshold is None else float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        self.device = configure_tensorflow()
        self.loaded_model = loaded_model
        self.threshold = float(threshold)
        self.batch_size = int(batch_size)
        self.gradcam = bool(gradcam)
        self.decode_workers = decode_workers or default_decode_workers()
        self.lookahead_batches = max(1, int(lookahead_batches))
        # decode(path, size) -> (model input, LoadedImage); core.reading.study_screening passes one
        # that also keeps the thumbnail and display copy of the same decode.
        self.decode = decode or load_for_model
        self.input_size = int(loaded_model.input_size)
        self.max_side = LOAD_MAX_SIDE_FACTOR * self.input_size  # decode size (see core.imaging.preprocessing)
        keras_model = loaded_model.keras_model
        # Calibration (core.models.calibration): every probability shown or thresholded is on this scale.
        self.temperature = float(loaded_model.card.temperature or 1.0)
        # Scope check (core.models.scope): metadata always; image content when the model has a detector.
        self.scope_detector = loaded_model.scope_detector
        self.population = population_of(loaded_model.card)
        if self.gradcam:
            from core.models.gradcam import GradCam, gradcam_for

            card = loaded_model.card
            # fused: probabilities + maps, on the card's absolute heat scale
            layer, reference = getattr(card, "gradcam_layer", None), getattr(card, "gradcam_reference", 0.0)
            if self.scope_detector is None:
                cam_pass = gradcam_for(keras_model, layer, reference)
                self._infer = lambda batch: (*cam_pass(batch), None)
            else:  # the scope check's pooled features come out of the same pass
                from core.models.scope import pooled_features

                self._infer = GradCam(keras_model, layer, reference,
                                      extra_outputs=pooled_features(keras_model, self.scope_detector.layers)
                                      ).with_extras
        elif self.scope_detector is not None:
            from core.models.scope import compile_scope_forward

            scope_forward = compile_scope_forward(keras_model, self.scope_detector.layers)

            def probs_and_features(batch):  # one forward pass: probabilities + pooled features
                probs, features = scope_forward(batch)
                return probs, None, features

            self._infer = probs_and_features
        else:
            forward = compile_forward(keras_model)
            self._infer = lambda batch: (forward(batch), None, None)

    def predict_batch(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """The compiled pass on ready model inputs (N, S, S, 1): (calibrated probabilities, maps or None).

        Runs everything screening runs per batch (the scope check included), so
        it times the whole model step.
        """
        probs, cams, _scope = self.infer_batch(batch)
        return probs, cams

    def infer_batch(self, batch: np.ndarray):
        """(calibrated probabilities, maps or None, (scope scores, reasons) or None) for one batch
        of ready model inputs: what screening computes per batch, before results are made."""
        raw, cams, features = self._infer(batch)
        scope = None if features is None else self.scope_detector.assess(features, batch)
        return apply_temperature(raw, self.temperature), cams, scope

    def screen(self, paths: Iterable, cancel: threading.Event | None = None) -> Iterator[ScreenResult]:
        """Yield one ScreenResult per path, in input order, as each batch finishes.

        `cancel` is checked before every batch, so screening stops within one
        batch; closing the generator early also stops it cleanly.
        """
        pending: deque[Future] = deque()
        source = iter(paths)
        limit = self.batch_size * self.lookahead_batches
        pool = ThreadPoolExecutor(self.decode_workers, thread_name_prefix="pneumoscan-decode")

        def top_up():
            while len(pending) < limit:
                path = next(source, None)
                if path is None:
                    return
                pending.append(pool.submit(_prepare, path, self.input_size, self.decode))

        try:
            top_up()
            while pending:
                if cancel is not None and cancel.is_set():
                    return
                batch = []
                while pending and len(batch) < self.batch_size:
                    batch.append(pending.popleft().result())
                    top_up()  # keep the workers busy while this batch runs
                yield from self._run_batch(batch)
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)

    def _run_batch(self, batch: list[_Prepared]) -> Iterator[ScreenResult]:
        ready = [item for item in batch if item.x is not None]
        probs, cams, scope = (self.infer_batch(np.stack([item.x for item in ready])) if ready
                              else ([], None, None))
        outputs = iter(range(len(ready)))
        for item in batch:
            if item.x is None:
                yield self._result(item, error=item.error)
                continue
            i = next(outputs)
            result = self._result(item, probability=float(probs[i]), cam=None if cams is None else cams[i])
            score, reason = (float(scope[0][i]), scope[1][i]) if scope is not None else (None, "")
            self._check_scope(result, score, reason)
            yield result

    def _check_scope(self, result: ScreenResult, score: float | None, content_reason: str) -> None:
        """Metadata first (its reason is the more specific), then the content detector's."""
        result.scope_score = score
        result.scope = metadata_reason(result.meta, self.population) or content_reason

    def _result(self, item: _Prepared, probability=None, cam=None, error=None) -> ScreenResult:
        model = self.loaded_model
        if cam is not None and item.content_box is not None:
            cam = onto_frame(cam, item.content_box)  # the map over the whole frame the reader sees
        return ScreenResult(
            path=item.path, probability=probability, threshold=self.threshold,
            model=model.name, model_version=str(model.version), model_hash=model.sha256,
            error=error, cam=cam, kind=item.kind, meta=item.meta, image_shape=item.image_shape,
            software_version=software_version(), film_preparation=FILM_PREPARATION)
