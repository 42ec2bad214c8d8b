"""Model architectures. Every model takes `core.preprocessing.to_model_input`
output, (S, S, 1) float32 in [0, 1], and does its own scaling (and channel
replication) inside the graph, so training, screening and the GUI can never
disagree. The Grad-CAM target is the layer named GRADCAM_LAYER.
"""
from __future__ import annotations

from pathlib import Path

ARCHITECTURES = ("mobilenet_v2", "custom_cnn")
GRADCAM_LAYER = "last_conv"
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
                weights_path: str | Path | None = None, dropout: float = 0.3):
    """Build an uncompiled model. `init` is "random" or "imagenet" (MobileNetV2 only)."""
    if arch == "mobilenet_v2":
        return _mobilenet_v2(input_size, init, weights_path, dropout)
    if arch == "custom_cnn":
        if init not in (INIT_RANDOM, None):
            raise ModelBuildError("custom_cnn has no pretrained weights: use init='random'")
        return _custom_cnn(input_size, dropout)
    raise ModelBuildError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")


def _classifier_head(features, dropout: float):
    from keras import layers

    x = layers.GlobalAveragePooling2D(name="gap")(features)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    return layers.Dense(1, activation="sigmoid", name="pneumonia_probability", dtype="float32")(x)


def _mobilenet_v2(input_size: int, init: str, weights_path, dropout: float):
    import keras
    from keras import layers

    weights = None
    if init == INIT_IMAGENET:
        weights = str(imagenet_weights_path(weights_path))
    elif init not in (INIT_RANDOM, None):
        raise ModelBuildError(f"unknown initialisation {init!r}")
    inputs = keras.Input((input_size, input_size, 1), name="image")
    # MobileNetV2 expects 3 channels in [-1, 1].
    x = layers.Rescaling(2.0, offset=-1.0, name="scale_to_pm1")(inputs)
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
    outputs = _classifier_head(last.output, dropout)
    return keras.Model(inputs, outputs, name="mobilenet_v2")


def _conv_bn_relu(x, filters: int, name: str, stride: int = 1, separable: bool = False,
                  act_name: str | None = None):
    from keras import layers, regularizers

    conv_cls = layers.SeparableConv2D if separable else layers.Conv2D
    x = conv_cls(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv",
                 **({} if separable else {"kernel_regularizer": regularizers.L2(1e-5)}))(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=act_name or f"{name}_relu")(x)


def _custom_cnn(input_size: int, dropout: float):
    """A compact VGG-like CNN (~0.5M parameters) sized for 2-core training.

    A strided stem and pooling keep the cost low; the last block stays at
    1/16 of the input (14x14 at 224) so Grad-CAM maps are not too coarse.
    """
    import keras
    from keras import layers

    inputs = keras.Input((input_size, input_size, 1), name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="scale_to_pm1")(inputs)
    x = _conv_bn_relu(x, 24, "stem", stride=2)
    x = _conv_bn_relu(x, 32, "block1")
    x = layers.MaxPooling2D(name="block1_pool")(x)
    x = _conv_bn_relu(x, 64, "block2a")
    x = _conv_bn_relu(x, 64, "block2b", separable=True)
    x = layers.MaxPooling2D(name="block2_pool")(x)
    x = _conv_bn_relu(x, 128, "block3a")
    x = _conv_bn_relu(x, 128, "block3b", separable=True)
    x = layers.MaxPooling2D(name="block3_pool")(x)
    x = _conv_bn_relu(x, 256, "block4a")
    x = _conv_bn_relu(x, 256, "block4b", separable=True, act_name=GRADCAM_LAYER)
    outputs = _classifier_head(x, dropout)
    return keras.Model(inputs, outputs, name="custom_cnn")
