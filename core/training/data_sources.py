"""Training data for the wizard (no Qt): where samples come from, whether they can be
read, and what the training will cost.

Two sources, alone or together:
- a labelled folder (core.training.dataset.labelled_samples: labels.csv or NORMAL /
  PNEUMONIA sub-folders, the one definition in core.imaging.labelled);
- the reader's labels in one study (core.reading.decision_labels: file identity
  checked, unsure and out-of-scope decisions left out), passed in as (path, label).

An image that is both in the folder and decided in the study keeps the
folder's label and is used once: the folder is the curated source, and a
duplicate would put the same image on both sides of the validation split.
"""
from __future__ import annotations

import shlex
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from core.training.dataset import CLASSES, Sample, labelled_samples, patient_id
from core.training.trainer import MIN_PER_CLASS, TrainConfig

CHECK_MAX_SIDE = 256  # enough to prove a file decodes; JPEGs decode reduced (fast)
_CHECK_CHUNK = 32  # files per cancel check / progress report


# -- sources -----------------------------------------------------------------

@dataclass
class CollectedSamples:
    folder: str | None
    extra_samples: list[tuple[str, str]]  # decisions that become TrainConfig.extra_samples
    samples: list[Sample]  # everything training will see (folder first)
    decisions_total: int = 0
    decisions_in_folder: int = 0  # used through the folder instead
    decisions_conflicting: int = 0  # ...and the folder's label differs from the reader's
    decisions_requested: bool = False


def collect_samples(folder: str | None, decisions: list[tuple[str, str]] | None) -> CollectedSamples:
    """The same list core.training.trainer.collect_samples builds, plus overlap accounting."""
    folder_samples = labelled_samples(folder) if folder else []
    by_path = {str(Path(s.path).resolve()): s.label for s in folder_samples}
    extra, overlap, conflict = [], 0, 0
    for path, label in decisions or []:
        folder_label = by_path.get(str(Path(path).resolve()))
        if folder_label is None:
            extra.append((str(path), label))
        else:
            overlap += 1
            conflict += folder_label != label
    samples = folder_samples + [Sample(path, label, patient_id(path)) for path, label in extra]
    return CollectedSamples(str(folder) if folder else None, extra, samples,
                            len(decisions or []), overlap, conflict, decisions is not None)


# -- readability ---------------------------------------------------------------

@dataclass
class DataCheck:
    collected: CollectedSamples
    readable: list[Sample] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def counts(self) -> dict[str, int]:
        return {c: sum(1 for s in self.readable if s.label == c) for c in CLASSES}

    @property
    def patients(self) -> dict[str, int]:
        return {c: len({s.patient for s in self.readable if s.label == c}) for c in CLASSES}

    @property
    def patient_total(self) -> int:
        return len({s.patient for s in self.readable})

    def shortfall(self) -> str | None:
        """Why training cannot start on these data, or None."""
        short = [f"{c}: {n}" for c, n in self.counts.items() if n < MIN_PER_CLASS]
        if not short:
            return None
        return (f"At least {MIN_PER_CLASS} readable images of each class are needed, so that "
                f"both the training and the validation side hold both classes; found {', '.join(short)}.")


def check_readability(collected: CollectedSamples, report=None, cancel: threading.Event | None = None,
                      workers: int = 2) -> DataCheck:
    """Load every sample with core.imaging.loader.load_image; report ("check", done, total).

    Runs on a worker thread. Stops early (returning what it has) when cancelled.
    """
    from core.imaging.loader import ImageLoadError, load_image

    def reason(sample: Sample) -> str | None:
        try:
            load_image(sample.path, max_side=CHECK_MAX_SIDE)
        except ImageLoadError as exc:
            return exc.message
        return None

    check = DataCheck(collected)
    samples = collected.samples
    with ThreadPoolExecutor(workers, thread_name_prefix="pneumoscan-check") as pool:
        for start in range(0, len(samples), _CHECK_CHUNK):
            if cancel is not None and cancel.is_set():
                break
            chunk = samples[start:start + _CHECK_CHUNK]
            for sample, why in zip(chunk, pool.map(reason, chunk)):
                if why is None:
                    check.readable.append(sample)
                else:
                    check.unreadable.append((sample.path, why))
            if report is not None:
                report(("check", start + len(chunk), len(samples)))
    return check


# -- settings ------------------------------------------------------------------

# Measured per-epoch seconds on this project's 2-core CPU at 224 px for the
# 5,216-image Kermany training set; the estimate scales them linearly.
SECONDS_PER_EPOCH = {"custom_cnn": 140.0, "mobilenet_v2": 300.0}
REFERENCE_IMAGES = 5216
REFERENCE_SIZE = 224

ARCH_LABELS = {"mobilenet_v2": "MobileNetV2", "custom_cnn": "Custom CNN (compact)"}
INIT_CURRENT = "current"  # wizard-only: resolved to the current model's path


@dataclass(frozen=True)
class Defaults:
    epochs: int
    lr: float


def defaults_for(init: str) -> Defaults:
    """Starting points: fresh weights need more epochs and a larger step than
    pretrained ones, which a large step would wreck."""
    if init == INIT_CURRENT:
        return Defaults(epochs=5, lr=1e-4)
    if init == "imagenet":
        return Defaults(epochs=10, lr=1e-4)
    return Defaults(epochs=15, lr=1e-3)


def estimate_seconds(arch: str, images: int, input_size: int, epochs: int) -> float:
    per_epoch = SECONDS_PER_EPOCH.get(arch, SECONDS_PER_EPOCH["mobilenet_v2"])
    return epochs * per_epoch * (images / REFERENCE_IMAGES) * (input_size / REFERENCE_SIZE) ** 2


def cli_equivalent(config: TrainConfig) -> str:
    """The `pneumoscan-cli train` line with the same settings (recorded in the card)."""
    args = ["pneumoscan-cli", "train", config.folder or "<no folder>", "--arch", config.arch,
            "--epochs", str(config.epochs), "--batch-size", str(config.batch_size),
            "--lr", f"{config.lr:g}", "--val-fraction", f"{config.val_fraction:g}",
            "--init", str(config.init), "--target-sensitivity", f"{config.target_sensitivity:g}",
            "--input-size", str(config.input_size)]
    if not config.augment:
        args.append("--no-augment")
    if not config.class_weighting:
        args.append("--no-class-weights")
    if config.lung_focus:
        args += ["--lung-focus", f"{config.lung_focus:g}"]
    return shlex.join(args)


def wizard_command(config: TrainConfig, study_folder=None) -> str:
    line = cli_equivalent(config)
    if config.extra_samples:
        return (f"desktop training wizard: {len(config.extra_samples)} reader-confirmed images "
                f"from {study_folder} added to {line}")
    return f"desktop training wizard, same as: {line}"
