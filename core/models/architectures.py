"""Model architectures. Every model takes `core.imaging.preprocessing.to_model_input`
output, (S, S, 1) float32 in [0, 1], and does its own intensity
standardisation (v2: a per-image percentile stretch), scaling and channel
replication inside the graph, so training, screening and the GUI can never
disagree. The Grad-CAM target is the layer named GRADCAM_LAYER; FINE_CAM_LAYER
is a finer (1/8 of the input) layer for sharper maps.
"""
from __future__ import annotations

from pathlib import Path

ARCHITECTURES = ("mobilenet_v2", "custom_cnn")
GRADCAM_LAYER = "last_conv"
FINE_CAM_LAYER = "fine_conv"
INIT_RANDOM = "random"
INIT_IMAGENET = "imagenet"
# Keras' own cache name for the no-top MobileNetV2 (alpha 1.0, 224) weights.
IMAGENET_WEIGHTS_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


class ModelBuildError(Exception):
    """A model cannot be built as asked (unknown architecture, missing weights)."""


def imagenet_weights_path(explicit: str | Path | None = None) -> Path:
    """Locate ImageNet weights without ever downloading (the app may be offline).

    Looks at an explicit path, then $PNEUMOSCAN_IMAGENET_WEIGHTS, then Keras'
    cache (~/.keras/models or $KERAS_HOME/models).
    """
    import os

    candidates = []
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get("PNEUMOSCAN_IMAGENET_WEIGHTS"):
        candidates.append(Path(os.environ["PNEUMOSCAN_IMAGENET_WEIGHTS"]))
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    candidates.append(keras_home / "models" / IMAGENET_WEIGHTS_FILE)
    for path in candidates:
        if path.is_file():
            return path
    raise ModelBuildError(
        "ImageNet weights for MobileNetV2 are not available on this machine "
        f"(looked in: {', '.join(str(c) for c in candidates)}). "
        "Train from random initialisation, or put the Keras file "
        f"'{IMAGENET_WEIGHTS_FILE}' in one of those places."
    )


def build_model(arch: str, input_size: int = 224, init: str = INIT_RANDOM,
                weights_path: str | Path | None = None, dropout: float = 0.3,
                standardise: bool = True):
    """Build an uncompiled model. `init` is "random" or "imagenet" (MobileNetV2 only).

    `standardise` puts the per-image percentile stretch at the graph's input
    (the v2 recipe); False rebuilds the v1 input path, for comparisons.
    """
    if arch == "mobilenet_v2":
        return _mobilenet_v2(input_size, init, weights_path, dropout, standardise)
    if arch == "custom_cnn":
        if init not in (INIT_RANDOM, None):
            raise ModelBuildError("custom_cnn has no pretrained weights: use init='random'")
        return _custom_cnn(input_size, dropout, standardise)
    raise ModelBuildError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")


def _input_path(input_size: int, standardise: bool):
    """Image input -> [-1, 1], standardised per image when asked."""
    import keras
    from keras import layers

    import core.models.layers as custom

    inputs = keras.Input((input_size, input_size, 1), name="image")
    x = custom.PercentileStretch(name="intensity_standardise")(inputs) if standardise else inputs
    return inputs, layers.Rescaling(2.0, offset=-1.0, name="scale_to_pm1")(x)


def _classifier_head(features, dropout: float):
    from keras import layers

    x = layers.GlobalAveragePooling2D(name="gap")(features)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(1, activation="sigmoid", name="pneumonia_probability", dtype="float32")(x)


def _mobilenet_v2(input_size: int, init: str, weights_path, dropout: float, standardise: bool):
    import keras
    from keras import layers

    weights = None
    if init == INIT_IMAGENET:
        weights = str(imagenet_weights_path(weights_path))
    elif init not in (INIT_RANDOM, None):
        raise ModelBuildError(f"unknown initialisation {init!r}")
    # MobileNetV2 expects 3 channels in [-1, 1].
    inputs, x = _input_path(input_size, standardise)
    x = layers.Concatenate(name="grey_to_rgb")([x, x, x])
    backbone = keras.applications.MobileNetV2(
        input_tensor=x, include_top=False, weights=weights, alpha=1.0)
    # Keras' MobileNetV2 uses BatchNorm momentum 0.999: from scratch, with ~140
    # steps an epoch, its moving statistics need ~7 epochs to catch up, and
    # until then validation outputs are constant (AUROC 0.5). 0.99 tracks them.
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = 0.99
    last = backbone.get_layer("out_relu")
    last.name = GRADCAM_LAYER  # the final 1280-channel activation: Grad-CAM's target
    # The last activation at 1/8 of the input (28x28 at 224): the finer map.
    backbone.get_layer("block_6_expand_relu").name = FINE_CAM_LAYER
    outputs = _classifier_head(last.output, dropout)
    return keras.Model(inputs, outputs, name="mobilenet_v2")


def _conv_bn(x, filters: int, name: str, stride: int = 1, kernel: int = 3):
    from keras import layers, regularizers

    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv",
                      kernel_regularizer=regularizers.L2(1e-5))(x)
    return layers.BatchNormalization(name=f"{name}_bn")(x)


def _residual_se_block(x, filters: int, name: str, stride: int = 1, act_name: str | None = None):
    """conv-BN-ReLU, conv-BN, squeeze-excite, plus a (projected) shortcut, then ReLU."""
    from keras import layers

    import core.models.layers as custom

    shortcut = x
    if stride != 1 or int(x.shape[-1]) != filters:
        shortcut = _conv_bn(x, filters, f"{name}_proj", stride, kernel=1)
    y = layers.ReLU(name=f"{name}_relu1")(_conv_bn(x, filters, f"{name}_a", stride))
    y = custom.SqueezeExcite(8, name=f"{name}_se")(_conv_bn(y, filters, f"{name}_b"))
    return layers.ReLU(name=act_name or f"{name}_out")(layers.Add(name=f"{name}_add")([shortcut, y]))


def _custom_cnn(input_size: int, dropout: float, standardise: bool):
    """A compact residual CNN with squeeze-excite (~1.4M parameters).

    v1's plain VGG-like stack learned the training site's look; residual
    blocks with channel attention generalised better to site_validation at
    a cost that still suits 2-core training. Stages at 1/2, 1/4, 1/8, 1/16;
    the last stays at 1/16 of the input (14x14 at 224) so Grad-CAM is not
    too coarse, and the 1/8 stage is the finer map.
    """
    import keras
    from keras import layers

    inputs, x = _input_path(input_size, standardise)
    x = layers.ReLU(name="stem_relu")(_conv_bn(x, 32, "stem", stride=2))
    x = _residual_se_block(x, 48, "stage1", stride=2)
    x = _residual_se_block(x, 96, "stage2", stride=2, act_name=FINE_CAM_LAYER)
    x = _residual_se_block(x, 128, "stage3a", stride=2)
    x = _residual_se_block(x, 128, "stage3b")
    x = _residual_se_block(x, 192, "stage4", act_name=GRADCAM_LAYER)
    outputs = _classifier_head(x, dropout)
    return keras.Model(inputs, outputs, name="custom_cnn")
