"""Custom Keras layers that live inside PneumoScan's model graphs.

Importing this module registers them with Keras' serialisation, so a saved
`.keras` model that uses them loads with `safe_mode=True` (no Lambda layers,
no pickled code). It imports Keras at module level: import it lazily, only
where a model is built or loaded (core.models.architectures, core.models.registry).
"""
from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="pneumoscan")
class PercentileStretch(layers.Layer):
    """Per-image intensity standardisation: maps the image's `low`..`high`
    percentiles to 0..1 and clips.

    It makes the model's input independent of how a file was stored: a 12-bit
    image in a 16-bit PNG (values in 0..1/16), a DICOM whose window spans its
    whole bit range (washed out) or a dark/bright export all reach the
    convolutions with the same contrast. It sits inside the graph so training,
    screening and Grad-CAM can never disagree about it. Any monotone-linear
    change of the stored values (scale, offset) leaves the output unchanged.
    """

    def __init__(self, low: float = 1.0, high: float = 99.0, min_range: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        self.low, self.high, self.min_range = float(low), float(high), float(min_range)

    def call(self, x):
        batch = ops.shape(x)[0]
        flat = ops.reshape(x, (batch, -1))
        bounds = ops.quantile(flat, ops.convert_to_tensor([self.low / 100.0, self.high / 100.0]), axis=1)
        lo = ops.reshape(bounds[0], (-1, 1, 1, 1))
        hi = ops.reshape(bounds[1], (-1, 1, 1, 1))
        # A flat image (no contrast at all) maps to 0 instead of amplifying noise.
        return ops.clip((x - lo) / ops.maximum(hi - lo, self.min_range), 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "low": self.low, "high": self.high, "min_range": self.min_range}


@keras.saving.register_keras_serializable(package="pneumoscan")
class SqueezeExcite(layers.Layer):
    """Channel attention (Hu et al. 2018): global pooling -> bottleneck -> sigmoid gate."""

    def __init__(self, ratio: int = 8, **kwargs):
        super().__init__(**kwargs)
        self.ratio = int(ratio)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        hidden = max(4, channels // self.ratio)
        self.reduce = layers.Dense(hidden, activation="relu", name="reduce")
        self.expand = layers.Dense(channels, activation="sigmoid", name="expand")
        self.reduce.build((None, channels))
        self.expand.build((None, hidden))
        super().build(input_shape)

    def call(self, x):
        gate = self.expand(self.reduce(ops.mean(x, axis=(1, 2))))
        return x * ops.expand_dims(ops.expand_dims(gate, 1), 1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "ratio": self.ratio}
