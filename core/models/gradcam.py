"""Batched Grad-CAM: where in the image the model found its evidence.

One forward and one backward pass per batch give both the probabilities and
the maps, so Grad-CAM costs at most about as much again as plain inference.

Maps are computed on the model's Grad-CAM layer grid (e.g. 7x7 for
MobileNetV2 at 224) and scaled in absolute terms, so a colour means the same
on every image:

    heat = clip(raw / reference, 0, 1) * probability

`reference` is fixed per model (the card's `gradcam_reference`: the median
peak of the raw map over validation positives), and the probability weight
makes a confident normal show little or no heat. Red therefore reads "as
strong as the evidence in a typical confident pneumonia"; a map normalised
to its own maximum would paint a saturated spot on every image, normals
included. Models without a reference fall back to per-image peaks (still
weighted by the probability).

Three methods: "gradcam" (channel weights = mean gradient; the classic, for the
coarse last layer), "layercam" (Jiang et al. 2021: element-wise positive
gradients; stays sharp on a finer, earlier layer such as core.models.architectures.FINE_CAM_LAYER)
and "layercam_smooth" (LayerCAM with the gradient averaged over 3x3 cells first:
on a layer followed by a stride-2 convolution plain LayerCAM shows an even
lattice of dots, the stride's footprint, not the image's).
`upsample` brings maps to any resolution and `overlay` paints them on the
image for heatmap PNGs. TensorFlow is imported lazily (only `GradCam` needs it).
"""
from __future__ import annotations

import weakref

import cv2
import numpy as np

DEFAULT_LAYER = "last_conv"  # == core.models.architectures.GRADCAM_LAYER, without importing TF
METHODS = ("gradcam", "layercam", "layercam_smooth")


def _is_sigmoid(activation) -> bool:
    return getattr(activation, "__name__", "") == "sigmoid"


def _score_tensor(model):
    """The pre-sigmoid logit when the head exposes it, else the output itself.

    Gradients of the logit do not vanish when the probability saturates at 0 or
    1 in float32; elsewhere the normalised maps are identical either way (the
    sigmoid's slope is one positive factor per image).
    """
    import keras

    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    if not _is_sigmoid(activation):
        return model.outputs[0]
    if isinstance(last, keras.layers.Activation):
        return last.input
    if isinstance(last, keras.layers.Dense):
        config = dict(last.get_config(), activation="linear", name=f"{last.name}_gradcam_logit")
        linear = keras.layers.Dense.from_config(config)
        logit = linear(last.input)
        linear.set_weights(last.get_weights())  # shares the trained head exactly
        return logit
    return model.outputs[0]


class GradCam:
    """Fused probability + Grad-CAM for whole batches on one Keras model."""

    def __init__(self, keras_model, layer_name: str | None = None, reference: float | None = None,
                 method: str = "gradcam", extra_outputs=()):
        """`extra_outputs`: more tensors of the model's graph (e.g. the scope check's
        pooled features) computed in the same pass; `with_extras` returns them."""
        import keras
        import tensorflow as tf

        if method not in METHODS:
            raise ValueError(f"unknown heatmap method {method!r}; choose one of {', '.join(METHODS)}")
        self.method = method
        self.reference = float(reference) if reference and reference > 0 else 0.0
        layer_name = layer_name or DEFAULT_LAYER
        try:
            layer = keras_model.get_layer(layer_name)
        except ValueError:
            raise ValueError(f"model {keras_model.name!r} has no layer named {layer_name!r} for Grad-CAM") from None
        # Built once: feature maps, score (logit) and probability in one graph.
        self._model = keras.Model(keras_model.inputs,
                                  [layer.output, _score_tensor(keras_model), keras_model.outputs[0],
                                   *extra_outputs])
        shape = tuple(keras_model.inputs[0].shape[1:])
        self._step = tf.function(self._probs_and_cams,
                                 input_signature=[tf.TensorSpec((None, *shape), tf.float32)])

    def _probs_and_cams(self, x):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(x)  # records the graph even if the model's weights are frozen
            features, score, probs, *extras = self._model(x, training=False)
            # Images are independent in inference mode, so one backward pass of
            # the summed score gives every image its own gradients.
            total = tf.reduce_sum(score)
        grads = tape.gradient(total, features)
        if self.method in ("layercam", "layercam_smooth"):
            positive = tf.nn.relu(grads)
            if self.method == "layercam_smooth":
                # A stride-2 layer after this one (e.g. a 1x1 stride-2 shortcut) sends gradient to every
                # other cell only: plain LayerCAM then paints an even lattice of dots that has nothing
                # to do with the image. Averaging the gradient over the 3x3 neighbourhood (its stride
                # footprint) removes the lattice and keeps the layer's resolution.
                positive = tf.nn.avg_pool2d(positive, ksize=3, strides=1, padding="SAME")
            raw = tf.nn.relu(tf.reduce_sum(positive * features, axis=-1))  # (N, h, w)
        else:
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # (N, 1, 1, C)
            raw = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))  # (N, h, w)
        probs = tf.reshape(probs, (-1,))
        if self.reference:
            scaled = tf.clip_by_value(raw / self.reference, 0.0, 1.0)
        else:
            scaled = tf.math.divide_no_nan(raw, tf.reduce_max(raw, axis=(1, 2), keepdims=True))
        cams = scaled * tf.reshape(tf.cast(probs, scaled.dtype), (-1, 1, 1))
        return probs, cams, tf.reduce_max(raw, axis=(1, 2)), extras

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, S, S, 1) model inputs -> (probabilities (N,), maps (N, h, w) float32 in [0, 1])."""
        probs, cams, _ = self.with_peaks(batch)
        return probs, cams

    def with_peaks(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As __call__, plus each image's raw (unscaled) map peak, for fitting a reference."""
        probs, cams, peaks, _extras = self._run(batch)
        return probs, cams, peaks

    def with_extras(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """As __call__, plus the `extra_outputs` (float64 arrays), from the same pass."""
        probs, cams, _peaks, extras = self._run(batch)
        return probs, cams, extras

    def _run(self, batch: np.ndarray):
        probs, cams, peaks, extras = self._step(np.asarray(batch, dtype=np.float32))
        cams = np.nan_to_num(cams.numpy(), nan=0.0, posinf=0.0, neginf=0.0)
        return (probs.numpy().astype(np.float64), np.clip(cams, 0.0, 1.0).astype(np.float32),
                peaks.numpy().astype(np.float64), [e.numpy().astype(np.float64) for e in extras])


# One GradCam per (model, layer, reference, method): building the gradient graph is not free.
_cache: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def gradcam_for(keras_model, layer_name: str | None = None, reference: float | None = None,
                method: str = "gradcam") -> GradCam:
    per_model = _cache.setdefault(keras_model, {})
    key = (layer_name or DEFAULT_LAYER, float(reference or 0.0), method)
    if key not in per_model:
        per_model[key] = GradCam(keras_model, key[0], reference, method)
    return per_model[key]


def gradcam_batch(keras_model, batch: np.ndarray, layer_name: str | None = None,
                  reference: float | None = None, method: str = "gradcam") -> np.ndarray:
    """Heat maps (N, h, w) float32 in [0, 1] for a batch of model inputs (see the module doc)."""
    return gradcam_for(keras_model, layer_name, reference, method)(batch)[1]


def fit_reference(keras_model, inputs: np.ndarray, labels, layer_name: str | None = None,
                  method: str = "gradcam", batch_size: int = 32) -> float:
    """The fixed scale for absolute heat: the median raw-map peak over the positives.

    `inputs` are model inputs (N, S, S, 1) float32 in [0, 1] (validation images,
    never the training ones); `labels` 1 = pneumonia.
    """
    cam = GradCam(keras_model, layer_name, None, method)
    positives = np.asarray(inputs)[np.asarray(labels) == 1]
    if len(positives) == 0:
        raise ValueError("a heat reference needs validation images with pneumonia")
    peaks = np.concatenate([cam.with_peaks(positives[i:i + batch_size])[2]
                            for i in range(0, len(positives), batch_size)])
    reference = float(np.median(peaks))
    if not np.isfinite(reference) or reference <= 0:
        raise ValueError("the model's maps are empty on the validation positives")
    return reference


def map_concentration(cams: np.ndarray, top_fraction: float = 0.1) -> np.ndarray:
    """Share of each map's heat held by its hottest `top_fraction` of cells (1 = one spot).

    A sharpness measure for comparing layers and methods without masks.
    """
    flat = np.asarray(cams, dtype=np.float64).reshape(len(cams), -1)
    k = max(1, int(round(flat.shape[1] * top_fraction)))
    top = np.sort(flat, axis=1)[:, -k:].sum(axis=1)
    total = flat.sum(axis=1)
    return np.divide(top, total, out=np.zeros_like(top), where=total > 0)


def upsample(cam: np.ndarray, shape) -> np.ndarray:
    """A grid map at image resolution: float32 (rows, cols) in [0, 1]."""
    rows, cols = int(shape[0]), int(shape[1])
    resized = cv2.resize(np.asarray(cam, dtype=np.float32), (cols, rows), interpolation=cv2.INTER_CUBIC)
    return np.clip(resized, 0.0, 1.0)  # bicubic overshoots a little


def onto_frame(cam: np.ndarray, content_box: tuple[float, float, float, float] | None,
               cells_per_cell: int = 2) -> np.ndarray:
    """A map of the model's input, which was the film inside its blank borders
    (core.imaging.preprocessing), as a grid over the whole frame: the map where the film
    is, zero on the borders. Without a box (nothing trimmed) the map is the frame's already.

    The grid is `cells_per_cell` times finer than the map, so the box edges fall within
    half a map cell of where they are; upsample() then brings it to any resolution.
    """
    if content_box is None:
        return cam
    top, bottom, left, right = content_box
    cam = np.asarray(cam, dtype=np.float32)
    rows = max(1, round(cells_per_cell * cam.shape[0] / max(bottom - top, 1e-3)))
    cols = max(1, round(cells_per_cell * cam.shape[1] / max(right - left, 1e-3)))
    r0, r1 = round(top * rows), max(round(bottom * rows), round(top * rows) + 1)
    c0, c1 = round(left * cols), max(round(right * cols), round(left * cols) + 1)
    frame = np.zeros((rows, cols), np.float32)
    frame[r0:r1, c0:c1] = cv2.resize(cam, (c1 - c0, r1 - r0), interpolation=cv2.INTER_LINEAR)
    return frame


def overlay(pixels: np.ndarray, heatmap: np.ndarray, alpha: float = 0.4) -> np.ndarray:
    """Grey image (2-D, float in [0, 1] or uint8) + heatmap -> uint8 RGB blend (jet colours)."""
    grey = pixels if pixels.dtype == np.uint8 else np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    if heatmap.shape != grey.shape:
        heatmap = upsample(heatmap, grey.shape)
    heat8 = np.round(np.clip(heatmap, 0.0, 1.0) * 255.0).astype(np.uint8)
    colours = cv2.cvtColor(cv2.applyColorMap(heat8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    base = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(base, 1.0 - alpha, colours, alpha, 0.0)
