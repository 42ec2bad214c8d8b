"""Site calibration: a model's operating point chosen on a site's own labelled images.

The network is not changed. From the raw probabilities on the site's images:
1. temperature: refitted only where it helps, i.e. where a temperature fitted
   on the other patient-grouped folds beats the model's current one on
   held-out negative log-likelihood, summed over folds;
2. threshold: the highest one reaching the target sensitivity on these
   images with one pneumonia to spare (guarded_target), on the calibrated
   scale (so the card's threshold and temperature go together);
3. honesty: metrics at that point on the same images (with 95 % intervals)
   are optimistic, since the point was chosen on them; the whole procedure is
   also cross-validated (temperature and threshold chosen on the other folds,
   calls made on the held-out fold) and both are recorded.
The result is registered as a new version with the same weights
(core.models.registry.register_copy) whose card records all of it.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field

import numpy as np

from core.models.calibration import apply_temperature, calibration_report, fit_temperature
from core.training.dataset import CLASSES, Sample
from core.training.metrics import (CI_METHOD, binary_metrics, confidence_intervals, evidence_shortfall,
                          metrics_with_ci, negatives_needed, positives_needed, storable_threshold,
                          threshold_for_sensitivity)

DEFAULT_TARGET = 0.97
FOLDS = 5
SEED = 0
NAME_SUFFIX = "-site"
MARGIN_CASES = 1  # see guarded_target


class CalibrationRefused(Exception):
    """The labelled set cannot support the requested operating point; says why."""


@dataclass
class SiteCalibration:
    """Everything chosen and measured; `record` is what the card stores."""
    base_label: str
    samples: list[Sample]  # readable ones, in the order of labels/raw
    labels: np.ndarray
    raw: np.ndarray
    temperature: float
    threshold: float
    target_sensitivity: float
    record: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)
    unreadable: list = field(default_factory=list)  # [(path, message)]

    @property
    def probabilities(self) -> np.ndarray:
        return apply_temperature(self.raw, self.temperature)


def default_name(base_name: str) -> str:
    """"<model>-site"; a calibrated model recalibrated keeps its name (a new version)."""
    return base_name if base_name.endswith(NAME_SUFFIX) else f"{base_name}{NAME_SUFFIX}"


def check_enough(samples, target_sensitivity: float) -> None:
    positives = sum(1 for s in samples if s.label == CLASSES[1])
    problem = evidence_shortfall(positives, len(samples) - positives, target_sensitivity)
    if problem:
        raise CalibrationRefused(problem[0].upper() + problem[1:])


# ---------------------------------------------------------------- the choices
def _folds(labels: np.ndarray, groups: np.ndarray, folds: int = FOLDS, seed: int = SEED):
    """Patient-grouped, stratified folds (images of one patient never straddle a fold)."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = min(folds, len(set(groups[labels == 1])), len(set(groups[labels == 0])))
    if folds < 2:
        return []
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(labels)), labels, groups))


def _nll(labels: np.ndarray, probabilities: np.ndarray) -> float:
    p = np.clip(probabilities, 1e-7, 1 - 1e-7)
    return float(-np.sum(labels * np.log(p) + (1 - labels) * np.log1p(-p)))


def choose_temperature(labels, raw, groups, current: float = 1.0) -> tuple[float, dict]:
    """Keep `current` unless a refitted temperature lowers held-out NLL (grouped CV)."""
    labels, raw, groups = np.asarray(labels), np.asarray(raw), np.asarray(groups)
    folds = _folds(labels, groups)
    refit_nll = kept_nll = 0.0
    for train, test in folds:
        t = fit_temperature(labels[train], raw[train])
        refit_nll += _nll(labels[test], apply_temperature(raw[test], t))
        kept_nll += _nll(labels[test], apply_temperature(raw[test], current))
    refit = fit_temperature(labels, raw)
    helps = bool(folds) and refit_nll < kept_nll
    details = {"method": "temperature scaling of the logit, fitted on the site's images",
               "previous_temperature": float(current), "refitted_temperature": refit,
               "refit_used": helps, "cv_folds": len(folds),
               "cv_nll_refit": refit_nll / len(labels) if folds else None,
               "cv_nll_previous": kept_nll / len(labels) if folds else None,
               "rule": "refit only if its patient-grouped cross-validated NLL is lower"}
    return (refit if helps else float(current)), details


def guarded_target(labels, target: float) -> float:
    """The sensitivity the threshold must reach on the calibration images: the
    target plus one pneumonia's worth (MARGIN_CASES / positives), so the target
    still holds if one more pneumonia had been missed. A point chosen exactly at
    the target on the images it is chosen on meets it on new patients only about
    half the time; on site_validation this margin lifted the cross-validated
    sensitivity of both v1 models from about the target to above it."""
    positives = int(np.sum(np.asarray(labels) == 1))
    return min(1.0, target + MARGIN_CASES / max(1, positives))


def choose_threshold(labels, probabilities, target: float) -> float:
    """The highest threshold (calibrated scale) reaching guarded_target on these images."""
    return storable_threshold(threshold_for_sensitivity(labels, probabilities, guarded_target(labels, target)))


def cross_validated_metrics(labels, raw, groups, target: float, current: float) -> dict | None:
    """Calls on each fold with temperature and threshold chosen on the other folds."""
    labels, raw, groups = np.asarray(labels), np.asarray(raw), np.asarray(groups)
    folds = _folds(labels, groups)
    if not folds:
        return None
    calls = np.zeros(len(labels), dtype=float)
    for train, test in folds:
        t, _ = choose_temperature(labels[train], raw[train], groups[train], current)
        threshold = choose_threshold(labels[train], apply_temperature(raw[train], t), target)
        calls[test] = apply_temperature(raw[test], t) >= threshold
    metrics = binary_metrics(labels, calls, 0.5)
    metrics.update(threshold=None, auroc=None, folds=len(folds))
    metrics["ci95"] = confidence_intervals(metrics)
    metrics["what"] = ("temperature and threshold chosen on the other patient-grouped folds, "
                       "calls made on the held-out fold: what to expect on new images from this site")
    return metrics


def fit_site_calibration(samples: list[Sample], raw: np.ndarray, base_card, target: float,
                         unreadable=()) -> SiteCalibration:
    """Choose temperature and threshold for `target` from raw probabilities of `samples`."""
    check_enough(samples, target)
    labels = np.array([s.target for s in samples])
    groups = np.array([s.patient for s in samples])
    raw = np.asarray(raw, dtype=float)
    before_t = float(getattr(base_card, "temperature", 1.0) or 1.0)
    temperature, calibration = choose_temperature(labels, raw, groups, before_t)
    probabilities = apply_temperature(raw, temperature)
    threshold = choose_threshold(labels, probabilities, target)
    before = apply_temperature(raw, before_t)
    calibration.update(
        temperature=temperature,
        before=calibration_report(labels, before), after=calibration_report(labels, probabilities))
    record = {
        "kind": "site calibration",
        "base_model": base_card.label, "base_sha256": base_card.sha256,
        "counts": {c: int(sum(s.label == c for s in samples)) for c in CLASSES},
        "patients": {c: len({s.patient for s in samples if s.label == c}) for c in CLASSES},
        "unreadable": len(unreadable),
        "target_sensitivity": target, "threshold": threshold, "temperature": temperature,
        "threshold_rule": (f"highest threshold whose sensitivity on these images is at least "
                           f"{guarded_target(labels, target):.4f} (the target plus one pneumonia of "
                           f"{int(labels.sum())}, so one more miss keeps the target), calibrated scale"),
        "metrics": metrics_with_ci(labels, probabilities, threshold),
        "metrics_note": "threshold chosen on these same images: optimistic; see cross_validated",
        "cross_validated": cross_validated_metrics(labels, raw, groups, target, before_t),
        "base_metrics": metrics_with_ci(labels, before, base_card.threshold),
        "base_metrics_note": f"{base_card.label} at its own threshold {base_card.threshold:g} "
                             f"(temperature {before_t:g}) on the same images",
        "ece_before": calibration["before"]["ece"], "brier_before": calibration["before"]["brier"],
        "ece_after": calibration["after"]["ece"], "brier_after": calibration["after"]["brier"],
        "minimum": {"positives": positives_needed(target), "negatives": negatives_needed()},
        "ci_method": CI_METHOD,
    }
    return SiteCalibration(base_card.label, list(samples), labels, raw, temperature, threshold, target,
                           record, calibration, list(unreadable))


# ---------------------------------------------------------------- data and registry
def screen_samples(entry, samples: list[Sample], batch_size: int = 32, report=None,
                   cancel: threading.Event | None = None):
    """Raw probabilities of `entry`'s network on `samples`: (readable samples, raw, unreadable)."""
    from core.screening.raw_scoring import raw_probabilities
    from core.models.registry import load_model

    loaded = load_model(entry)
    raw, errors = raw_probabilities(loaded, [s.path for s in samples], batch_size, report, cancel)
    ok = ~np.isnan(raw)
    readable = [s for s, good in zip(samples, ok) if good]
    return readable, raw[ok], sorted(errors.items())


def calibrate_samples(samples: list[Sample], model: str | None = None, target: float = DEFAULT_TARGET,
                      batch_size: int = 32, report=None, cancel=None) -> tuple[object, SiteCalibration]:
    """(base ModelEntry, SiteCalibration) for labelled `samples`; refuses before screening
    when there are too few, and again if unreadable files leave too few."""
    from core.models.registry import find_model

    if not 0.0 < target < 1.0:
        raise CalibrationRefused("the target sensitivity must be above 0 and below 1")
    check_enough(samples, target)
    entry = find_model(model)
    readable, raw, unreadable = screen_samples(entry, samples, batch_size, report, cancel)
    if cancel is not None and cancel.is_set():
        raise CalibrationRefused("cancelled")
    return entry, fit_site_calibration(readable, raw, entry.card, target, unreadable)


def card_for(base_card, calibration: SiteCalibration, name: str, version: int, source: str,
             command: str):
    """The new entry's card: the base's provenance, the site's operating point."""
    record = dict(calibration.record, folder=source, command=command)
    card = dataclasses.replace(
        base_card, name=name, version=version, created="", sha256="",
        threshold=calibration.threshold, temperature=calibration.temperature,
        calibration=dict(calibration.calibration, set=source, command=command),
        site_validation=record,
        validation_metrics=dict(base_card.validation_metrics,
                                operating_point=f"internal validation of {base_card.label} at its own "
                                                f"threshold {base_card.threshold:g}, not this entry's"),
        training_data=dict(base_card.training_data),
        notes=(f"site calibration of {base_card.label} (same weights) on {source}: threshold "
               f"{calibration.threshold:g} for sensitivity >= {calibration.target_sensitivity:g}, "
               f"temperature {calibration.temperature:.3g}"))
    return card


def register(base_entry, calibration: SiteCalibration, name: str | None = None, source: str = "",
             command: str = "", directory=None):
    """Register the calibrated operating point as `name` (default "<model>-site"), next version."""
    from core.models.registry import ModelError, next_version, register_copy

    name = (name or default_name(base_entry.card.name)).strip()
    version = next_version(name)
    for _ in range(100):  # a stray file may hold a version number: take the next free one
        card = card_for(base_entry.card, calibration, name, version, source, command)
        try:
            return register_copy(base_entry, card, directory)
        except ModelError as exc:
            if "already exists" not in str(exc):
                raise
            version += 1
    raise ModelError(f"no free file name for {name}")


def site_validation_record(entry, folder, batch_size: int = 32, report=None, cancel=None) -> dict:
    """A model measured as it is (its own threshold and temperature) on a labelled
    folder it was not trained on: what a card's `site_validation` holds for an
    uncalibrated model (e.g. the shipped ones on chest_xray/site_validation)."""
    from core.training.dataset import labelled_samples

    samples = labelled_samples(folder)
    readable, raw, unreadable = screen_samples(entry, samples, batch_size, report, cancel)
    if not readable:
        raise CalibrationRefused(f"no readable labelled images in {folder}")
    labels = np.array([s.target for s in readable])
    card = entry.card
    temperature = float(getattr(card, "temperature", 1.0) or 1.0)
    probabilities = apply_temperature(raw, temperature)
    shown, uncalibrated = calibration_report(labels, probabilities), calibration_report(labels, raw)
    return {
        "kind": "external validation at the model's own operating point",
        "folder": str(folder), "model": card.label,
        "counts": {c: int(sum(s.label == c for s in readable)) for c in CLASSES},
        "patients": {c: len({s.patient for s in readable if s.label == c}) for c in CLASSES},
        "unreadable": len(unreadable), "threshold": card.threshold, "temperature": temperature,
        "metrics": metrics_with_ci(labels, probabilities, card.threshold),
        "ece": shown["ece"], "brier": shown["brier"],
        "ece_uncalibrated": uncalibrated["ece"], "brier_uncalibrated": uncalibrated["brier"],
        "ci_method": CI_METHOD,
    }
