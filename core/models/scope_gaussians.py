"""Scope check: the shrinkage (Ledoit-Wolf) Gaussians on pooled feature blocks, one per block or one
per training class (distance to the nearest), kept as principal directions plus one rest variance,
and saved as plain arrays."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_COMPONENTS = 128  # principal directions kept per block; the rest share one variance


_blas_controller = None


def single_threaded_blas():
    """Batch-sized products are tiny: with TensorFlow busy in the same process,
    OpenBLAS's own threads only wait for cores (measured 3 ms vs 0.2 ms per image)."""
    global _blas_controller
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # scikit-learn's dependency; without it, just run
        import contextlib

        return contextlib.nullcontext()
    if _blas_controller is None:
        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


def spread_scale(squared_distance: np.ndarray) -> np.ndarray:
    """The Mahalanobis distance itself: on the v1 models it combined across blocks a
    little better than its square or its log (which squashes strong evidence)."""
    return np.sqrt(squared_distance)


@dataclass
class GaussianBlock:
    """Shrinkage Gaussian on one feature block, kept as principal directions + one rest variance."""
    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,) per-feature standard deviation (features are standardised first)
    components: np.ndarray  # (K, D) orthonormal rows
    variances: np.ndarray  # (K,) shrunk variances along them
    rest_variance: float  # shrunk variance of every other direction
    # Distance statistics on held-out training images (for standardising across blocks).
    center: float = 0.0
    spread: float = 1.0

    @classmethod
    def fit(cls, features: np.ndarray, max_components: int = MAX_COMPONENTS) -> "GaussianBlock":
        """Ledoit-Wolf shrinkage of the standardised features' covariance, from an SVD.

        The shrunk covariance (1 - a) S + a mu I has S's eigenvectors, so the
        full D x D matrix is never formed (D reaches several thousand).
        """
        from sklearn.covariance import ledoit_wolf_shrinkage

        x = np.asarray(features, dtype=np.float64)
        n, dims = x.shape
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 1e-8 * max(float(scale.max()), 1e-12), scale, max(float(scale.max()), 1e-6))
        z = (x - mean) / scale
        shrinkage = float(ledoit_wolf_shrinkage(z, assume_centered=True))
        _, singular, vt = np.linalg.svd(z, full_matrices=False)
        sample_var = singular ** 2 / n  # S's eigenvalues (the others are 0)
        mu = float((z * z).sum() / (n * dims))  # trace(S) / D
        k = min(max_components, len(sample_var))
        shrunk = (1.0 - shrinkage) * sample_var[:k] + shrinkage * mu
        rest_sample = (float((z * z).sum() / n) - float(sample_var[:k].sum())) / max(dims - k, 1)
        rest = (1.0 - shrinkage) * max(rest_sample, 0.0) + shrinkage * mu
        return cls(mean, scale, vt[:k].copy(), np.maximum(shrunk, 1e-9), max(rest, 1e-9))

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each row (N,)."""
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.scale
        projected = z @ self.components.T
        residual = np.maximum((z * z).sum(axis=1) - (projected * projected).sum(axis=1), 0.0)
        return (projected * projected / self.variances).sum(axis=1) + residual / self.rest_variance

    def standardised(self, features: np.ndarray) -> np.ndarray:
        return standardised(self, features)


def standardised(block, features: np.ndarray) -> np.ndarray:
    """A block's distance on the scale of its held-out training images (GaussianBlock, ClassGaussians)."""
    return (spread_scale(block.distance(features)) - block.center) / block.spread


@dataclass
class ClassGaussians:
    """One shrinkage Gaussian per training class on one block; the distance is to the
    nearest (class-conditional Mahalanobis, Lee et al. 2018): an image need only be
    typical of one class, so each Gaussian can be tighter than one over both."""
    members: list[GaussianBlock]
    center: float = 0.0
    spread: float = 1.0

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray) -> "ClassGaussians":
        x, labels = np.asarray(features), np.asarray(labels)
        return cls([GaussianBlock.fit(x[labels == label]) for label in np.unique(labels)])

    def distance(self, features: np.ndarray) -> np.ndarray:
        return np.min([member.distance(features) for member in self.members], axis=0)

    def standardised(self, features: np.ndarray) -> np.ndarray:
        return standardised(self, features)


def members(block) -> list[GaussianBlock]:
    return block.members if isinstance(block, ClassGaussians) else [block]


MIN_CLASS_IMAGES = 50  # fewer images of a class than this: one Gaussian over all classes


def fit_block(features: np.ndarray, labels: np.ndarray | None):
    """Class-conditional where every image has a class and every class has enough images,
    else one Gaussian (a split file may list paths without labels: "")."""
    if labels is not None and all(labels):
        names, counts = np.unique(np.asarray(labels), return_counts=True)
        if len(names) > 1 and counts.min() >= MIN_CLASS_IMAGES:
            return ClassGaussians.fit(features, labels)
    return GaussianBlock.fit(features)


def gaussian_arrays(prefix: str, block: GaussianBlock) -> dict[str, np.ndarray]:
    return {f"{prefix}_mean": block.mean, f"{prefix}_scale": block.scale,
            f"{prefix}_components": block.components.astype(np.float32), f"{prefix}_variances": block.variances}


def gaussian_from(arrays, prefix: str, rest: float, center: float = 0.0, spread: float = 1.0) -> GaussianBlock:
    return GaussianBlock(*(arrays[f"{prefix}_{k}"].astype(np.float64) for k in ("mean", "scale", "components",
                                                                                "variances")),
                         rest, center, spread)
