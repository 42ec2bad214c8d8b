"""The data side of training: decode once into a uint8 cache, augmented batches
(with optional mixup) for Keras, class weights, and fast prediction on a cache."""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from core.imaging.loader import ImageLoadError
from core.imaging.preprocessing import load_for_model, to_uint8
from core.screening.screener import compile_forward
from core.training.dataset import Sample
from core.training.run_config import TrainConfig, TrainingCancelled


def decode_samples(samples: list[Sample], size: int, cancel: threading.Event | None = None,
                   workers: int = 2) -> tuple[np.ndarray, list[Sample], list]:
    """Decode + resize once into a uint8 cache (5k images at 224 is ~260 MB)."""
    def one(sample):
        if cancel is not None and cancel.is_set():
            return None
        try:
            image, _ = load_for_model(sample.path, size)
            return to_uint8(image)
        except ImageLoadError as exc:
            return exc

    with ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(one, samples))
    if cancel is not None and cancel.is_set():
        raise TrainingCancelled()
    kept, arrays, unreadable = [], [], []
    for sample, item in zip(samples, decoded):
        if isinstance(item, ImageLoadError):
            unreadable.append((sample.path, item.message))
        else:
            kept.append(sample)
            arrays.append(item)
    cache = np.stack(arrays) if arrays else np.zeros((0, size, size, 1), np.uint8)
    return cache, kept, unreadable


class AugmentedBatches:
    """Factory for a keras.utils.PyDataset over the uint8 cache (backend-agnostic).

    Each image is augmented by core.training.augmentation with a generator seeded from
    (seed, epoch, index), so a resumed run sees the same stream; loader
    threads overlap OpenCV work (which releases the GIL) with training.
    With `masks` (one 0/1 lung-field mask per image, core.training.lung_focus) each batch's
    inputs are {"image", "outside_lungs"}: the images, and each map cell's share outside
    the mask after the image's own positioning, on a `grid` x `grid` map.
    """

    @staticmethod
    def create(cache: np.ndarray, targets: np.ndarray, config: "TrainConfig", workers: int | None = None,
               masks: np.ndarray | None = None, grid: int | None = None):
        import keras

        from core.training.augmentation import augment, augment_with_mask
        from core.training.lung_focus import OUTSIDE_INPUT, outside_share

        if masks is not None and (len(masks) != len(cache) or not grid or config.mixup_alpha > 0):
            raise ValueError("lung-field masks need one mask per image and a map grid, and no mixup")

        level = config.augment_level if config.augment else "none"
        smoothing = float(config.label_smoothing)
        workers = workers or max(1, min(8, (os.cpu_count() or 2)))

        class _Batches(keras.utils.PyDataset):
            def __init__(self):
                super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
                self.epoch = 0
                self.order = self._shuffled()

            def _shuffled(self):
                return np.random.default_rng([config.seed, self.epoch]).permutation(len(cache))

            def __len__(self):
                return int(np.ceil(len(cache) / config.batch_size))

            def __getitem__(self, index):
                rows = self.order[index * config.batch_size:(index + 1) * config.batch_size]
                rng = np.random.default_rng([config.seed, self.epoch, index])
                y = targets[rows].astype("float32")[:, None]
                if smoothing:
                    y = y * (1.0 - smoothing) + 0.5 * smoothing
                if masks is not None:
                    pairs = [augment_with_mask(cache[r], masks[r], rng, level) for r in rows]
                    outside = np.stack([outside_share(mask, grid) for _, mask in pairs])
                    return {"image": np.stack([x for x, _ in pairs]), OUTSIDE_INPUT: outside}, y
                x = np.stack([augment(cache[r], rng, level) for r in rows])
                if config.mixup_alpha > 0:
                    x, y = mixup(x, y, rng, config.mixup_alpha)
                return x, y

            def on_epoch_end(self):
                self.epoch += 1
                self.order = self._shuffled()

        return _Batches()


def mixup(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, alpha: float):
    """Blend each image and its target with another of the batch (weights ~ Beta(alpha, alpha)).

    The larger weight stays on the image's own side, so a blend keeps its
    identity and class weighting (which rounds soft targets) stays meaningful.
    """
    lam = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)
    lam = np.maximum(lam, 1.0 - lam)
    partner = rng.permutation(len(x))
    x = lam[:, None, None, None] * x + (1.0 - lam[:, None, None, None]) * x[partner]
    y = lam[:, None] * y + (1.0 - lam[:, None]) * y[partner]
    return x.astype(np.float32), y.astype(np.float32)


def make_train_dataset(cache: np.ndarray, targets: np.ndarray, config: "TrainConfig", initial_epoch: int = 0,
                       masks: np.ndarray | None = None, grid: int | None = None):
    data = AugmentedBatches.create(cache, targets, config, masks=masks, grid=grid)
    data.epoch = initial_epoch
    data.order = data._shuffled()
    return data


def forward_for(model):
    """A fast inference function for validation: screening's compiled tf.function
    on TensorFlow, Keras' own compiled predict step on other backends."""
    import keras

    if keras.backend.backend() == "tensorflow":
        return compile_forward(model)
    return lambda batch: np.asarray(model.predict_on_batch(np.asarray(batch, np.float32))).reshape(-1)


def predict_cache(forward, cache: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Probabilities for the uint8 cache; `forward` is core.screening.screener.compile_forward(model),
    the same compiled pass screening uses, traced once per model (not once per epoch)."""
    out = [forward(cache[start:start + batch_size].astype(np.float32) / 255.0)
           for start in range(0, len(cache), batch_size)]
    return np.concatenate(out) if out else np.zeros(0)


def class_weights(targets: np.ndarray) -> dict[int, float]:
    """Balanced weights (n / (2 * n_class)) for the ~1:3 normal:pneumonia imbalance."""
    from sklearn.utils.class_weight import compute_class_weight

    weights = compute_class_weight("balanced", classes=np.array([0, 1]), y=targets)
    return {0: float(weights[0]), 1: float(weights[1])}

