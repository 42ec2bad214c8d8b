"""Recipe selection by patient-grouped cross-validation on the training part.

site_validation (218 images) is too small to pick among candidates: a recipe
chosen on it fits it. Here every recipe trains on the same StratifiedGroupKFold
folds of the training folder (grouped by patient, so no patient is on both
sides) for the same number of epochs, and each fold's held-out patients are
scored three ways:

- as they are (internal AUROC: saturated, ~0.998, kept for completeness);
- on acquisition-shifted copies (core.training.acquisition_shift.SHIFTS), the
  proxy for another site;
- on the hard subset, viral pneumonia against normal (most of the unseen
  site's false negatives are viral);
plus test-time augmentation of the same model (no extra training).

One JSON file per (recipe, fold) is written when the fold finishes; a finished
fold is never rerun, an interrupted one resumes from its last epoch's
checkpoint. `summarise` turns the files into means with t intervals across
folds and paired differences against the baseline: a candidate is kept only
where the paired interval of its gain excludes zero.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core.imaging.preprocessing import FILM_PREPARATION
from core.training import dataset as ds_mod
from core.training.acquisition_shift import SHIFTS, TTA_VIEWS, shifted
from core.training.metrics import auroc
from core.training.run_config import atomic_json, atomic_save

# Recipe name -> TrainConfig fields that differ from the v2 recipe.
RECIPES = {
    "baseline": {},  # the v2 recipe: percentile stretch + acquisition augmentation
    "mixup": {"mixup_alpha": 0.2},
    # Weight averaging (Polyak / EMA of the weights, Keras' use_ema): flatter minima, often a gain off-site.
    "ema": {"ema_momentum": 0.99},
    # Train and score on the thorax cropped from the image itself (core.models.lung_fields.thorax_box),
    # so framing, shoulders and burned-in markers weigh less.
    "thorax": {"input_view": "thorax"},
    # The full film, with a penalty on class-activation evidence outside the estimated lung fields
    # (core.training.lung_focus): the model may not lean on markers, shoulders or the abdomen.
    "lung_focus": {"lung_focus": 0.3},
    "lung_focus_strong": {"lung_focus": 1.0},  # frame evidence kept only while a film's error exceeds ~1
    # The other end of the dose-response: does a lighter penalty keep the viral-vs-normal ranking
    # that 0.3 lost (-0.003), while still moving much of the heat onto the lungs?
    "lung_focus_light": {"lung_focus": 0.1},
    # A second initialisation and batch order of the same recipe: the like-for-like control for an
    # ensemble (core.training.cv_ensemble), which any two different members would otherwise flatter.
    "baseline_seed1": {"seed": 1},
    "lung_focus_seed1": {"lung_focus": 0.3, "seed": 1},
}
# Recipe keys the protocol handles itself (not TrainConfig fields).
CV_ONLY = ("ema_momentum", "input_view", "lung_focus")  # input_view: "full" (default) or "thorax"
BASELINE = "baseline"


@dataclass
class CVConfig:
    folder: str
    out_dir: str
    folds: int = 3
    epochs: int = 4
    input_size: int = 128
    batch_size: int = 32
    seed: int = 0
    # How the cached films were prepared (core.imaging.preprocessing.FILM_PREPARATION): a
    # comparison is like for like only within one. None: a protocol from before 0.4.2, which
    # did not record it (runs started on 0.4.0 decoded whole frames, from 0.4.1 trimmed).
    film_preparation: int | None = FILM_PREPARATION


def is_viral(path: str) -> bool:
    return "virus" in Path(path).name.lower()


def make_folds(samples: list, folds: int, seed: int) -> list[np.ndarray]:
    """Held-out indices per fold: stratified by class, grouped by patient."""
    from sklearn.model_selection import StratifiedGroupKFold

    targets = np.array([s.target for s in samples])
    groups = np.array([s.patient for s in samples])
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [held for _, held in splitter.split(np.zeros(len(samples)), targets, groups)]


def protocol_samples(config: CVConfig) -> list:
    """The protocol's labelled images in path order: the order folds.json and the caches index."""
    return sorted(ds_mod.labelled_samples(config.folder), key=lambda s: s.path)


def read_protocol(out_dir) -> CVConfig:
    """The protocol a cross-validation in `out_dir` was run with (FileNotFoundError if none was),
    pointing at `out_dir` itself, wherever the run was started from."""
    path = Path(out_dir) / "protocol.json"
    if not path.is_file():
        raise FileNotFoundError(f"no cross-validation in {out_dir} (run it first)")
    recorded = {"film_preparation": None, **json.loads(path.read_text(encoding="utf-8"))}
    return CVConfig(**{**recorded, "out_dir": str(out_dir)})


def _same_protocol(config: CVConfig) -> CVConfig:
    """`config`, checked against the protocol already run in its out_dir: a resume with other
    settings (epochs, size, folds, seed, folder or film preparation) would put folds that
    are not comparable side by side in one summary, so it is refused, saying what differs."""
    try:
        recorded = read_protocol(config.out_dir)
    except FileNotFoundError:
        return config
    if recorded.film_preparation is None:  # not recorded: keep it unrecorded, never guess
        config = dataclasses.replace(config, film_preparation=None)
    differences = [f"{name} {getattr(recorded, name)!r} (asked: {value!r})"
                   for name, value in dataclasses.asdict(config).items()
                   if name not in ("out_dir", "folder") and getattr(recorded, name) != value]
    if Path(recorded.folder).resolve() != Path(config.folder).resolve():
        differences.append(f"folder {recorded.folder!r} (asked: {config.folder!r})")
    if differences:
        raise ValueError(f"{config.out_dir} holds a cross-validation run with {', '.join(differences)}: "
                         f"resume it with the same settings, or choose another --out")
    return config


def load_or_make_folds(config: CVConfig, samples: list) -> list[np.ndarray]:
    """The same folds for every recipe and every resume (kept in folds.json)."""
    path = Path(config.out_dir) / "folds.json"
    paths = [s.path for s in samples]
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        index = {p: i for i, p in enumerate(paths)}
        return [np.array([index[p] for p in fold]) for fold in data["held_out"]]
    folds = make_folds(samples, config.folds, config.seed)
    atomic_json(path, {"seed": config.seed, "folds": config.folds, "method": "StratifiedGroupKFold by patient",
                        "held_out": [[paths[i] for i in fold] for fold in folds]})
    return folds


def score_held_out(forward, cache: np.ndarray, samples: list) -> dict:
    """AUROC as is, on each shifted copy, viral-vs-normal, and with TTA, for one fold's held-out images."""
    from core.training.trainer import predict_cache

    labels = np.array([s.target for s in samples])
    hard = np.array([s.target == 0 or is_viral(s.path) for s in samples])
    plain = predict_cache(forward, cache)
    shift_probs = {name: predict_cache(forward, shifted(cache, name)) for name in SHIFTS}
    tta_views = {name: (plain if name == "identity" else predict_cache(forward, shifted(cache, name, TTA_VIEWS)))
                 for name in TTA_VIEWS}
    tta = np.mean(list(tta_views.values()), axis=0)
    shift_aurocs = {name: auroc(labels, p) for name, p in shift_probs.items()}
    return {
        "n": int(len(labels)), "positives": int(labels.sum()), "viral": int((hard & (labels == 1)).sum()),
        "auroc": auroc(labels, plain),
        "shifted_auroc": shift_aurocs,
        "shifted_auroc_mean": float(np.mean(list(shift_aurocs.values()))),
        "viral_vs_normal_auroc": auroc(labels[hard], plain[hard]),
        "viral_vs_normal_shifted_auroc_mean": float(np.mean([auroc(labels[hard], p[hard])
                                                             for p in shift_probs.values()])),
        "tta_auroc": auroc(labels, tta),
        "tta_viral_vs_normal_auroc": auroc(labels[hard], tta[hard]),
    }


def _train_config(config: CVConfig, recipe: str, run_dir: Path):
    from core.training.trainer import TrainConfig

    fields = dict(folder=config.folder, name=f"cv-{recipe}", epochs=config.epochs,
                  batch_size=config.batch_size, input_size=config.input_size, seed=config.seed,
                  run_dir=str(run_dir), patience=config.epochs + 1)
    fields.update({k: v for k, v in RECIPES[recipe].items() if k not in CV_ONLY})  # a recipe may set its seed
    return TrainConfig(**fields)


def _fit_fold(train_config, cache, targets, run_dir: Path, log, ema_momentum: float = 0.0,
              lung_focus: float = 0.0, masks: np.ndarray | None = None):
    """Train for exactly `epochs` epochs (no early stopping: equal epochs for every
    recipe), checkpointing after each so an interrupted fold resumes. With `lung_focus`
    the plain model is fitted through core.training.lung_focus's penalty wrapper and the
    checkpoint holds the plain model (a resume: core.training.fit_setup)."""
    import keras

    from core.training.fit_setup import model_to_fit
    from core.training.lung_focus import cam_grid
    from core.training.trainer import (build_for_training, class_weights, compile_for_training,
                                       make_train_dataset)

    state_path, last = run_dir / "state.json", run_dir / "last.keras"
    steps = int(math.ceil(len(cache) / train_config.batch_size))
    resuming = last.is_file() and state_path.is_file()
    state = json.loads(state_path.read_text(encoding="utf-8")) if resuming else {"epoch": 0, "seconds": []}
    if resuming:
        log(f"{run_dir.name}: resuming after epoch {state['epoch']}")
    model, fitted = model_to_fit(
        last if resuming else None, lambda: build_for_training(train_config),
        lambda m: compile_for_training(m, train_config, steps, ema_momentum=ema_momentum),
        train_config.seed, state["epoch"], steps, lung_focus)
    grid = cam_grid(model) if lung_focus else None

    class Checkpoint(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            state["epoch"] = epoch + 1
            state["seconds"].append(time.monotonic() - self.started)
            atomic_save(model, last)
            atomic_json(state_path, state)
            log(f"{run_dir.name}: epoch {epoch + 1}/{train_config.epochs} loss {logs.get('loss', float('nan')):.4f} "
                f"({state['seconds'][-1]:.0f} s)")

    final = run_dir / "final.keras"  # what was scored: after fit, with averaged weights where EMA is on
    if state["epoch"] < train_config.epochs:
        fitted.fit(make_train_dataset(cache, targets, train_config, state["epoch"], masks=masks, grid=grid),
                   epochs=train_config.epochs, initial_epoch=state["epoch"], callbacks=[Checkpoint()], verbose=0,
                   shuffle=False, class_weight=class_weights(targets) if train_config.class_weighting else None)
    elif final.is_file():
        return keras.models.load_model(final, compile=False, safe_mode=True), state
    elif ema_momentum > 0:  # cut between the last epoch and the save: average from the optimizer's copy
        model.optimizer.finalize_variable_values(model.trainable_weights)
    atomic_save(model, final)
    return model, state


def load_cache(config: CVConfig, samples: list, log, view: str = "full") -> np.ndarray:
    """Decode the training folder once at the protocol's size (cache_<size>[_<view>].npy beside
    the results). The thorax view is cropped from a decode at twice the size, then resized."""
    from core.models.lung_fields import crop_to_thorax
    from core.training.trainer import decode_samples

    suffix = "" if view == "full" else f"_{view}"
    path = Path(config.out_dir) / f"cache_{config.input_size}{suffix}.npy"
    if path.is_file():
        cache = np.load(path)
        if len(cache) == len(samples):
            return cache
    if config.film_preparation != FILM_PREPARATION:
        raise ValueError(f"{path.name} must be decoded again, but the protocol in {config.out_dir} prepared its "
                         f"films as {config.film_preparation or 'not recorded (before 0.4.2)'} and this PneumoScan "
                         f"prepares them as {FILM_PREPARATION}: its recipes would no longer be comparable; "
                         f"choose another --out")
    size = config.input_size if view == "full" else 2 * config.input_size
    log(f"decoding {len(samples)} images at {size}px ({view}) ...")
    cache, kept, unreadable = decode_samples(samples, size)
    if unreadable:
        raise ValueError(f"{len(unreadable)} unreadable training images (first: {unreadable[0]})")
    if view == "thorax":
        cache = np.stack([crop_to_thorax(image, config.input_size) for image in cache])
    np.save(path, cache)
    return cache


def result_path(config: CVConfig, recipe: str, fold: int) -> Path:
    return Path(config.out_dir) / "results" / f"{recipe}-fold{fold}.json"


def run_protocol(config: CVConfig, recipes: list[str], only_folds: list[int] | None = None,
                 log: Callable[[str], None] = print) -> list[Path]:
    """Run every unfinished (recipe, fold), fold by fold so recipes stay paired if time runs out."""
    from core.training.lung_focus import cached_training_masks
    from core.training.trainer import forward_for

    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        raise ValueError(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(RECIPES)}")
    config = _same_protocol(config)
    out = Path(config.out_dir)
    (out / "results").mkdir(parents=True, exist_ok=True)
    atomic_json(out / "protocol.json", dataclasses.asdict(config))
    samples = protocol_samples(config)
    folds = load_or_make_folds(config, samples)
    caches = {}  # view -> decoded images, loaded when a recipe first needs it
    masks = None  # the full view's lung-field masks, for a recipe with a lung-focus penalty
    targets = np.array([s.target for s in samples])
    written = []
    for fold, held in enumerate(folds):
        if only_folds is not None and fold not in only_folds:
            continue
        train_idx = np.setdiff1d(np.arange(len(samples)), held)
        for recipe in recipes:
            target = result_path(config, recipe, fold)
            if target.is_file():
                continue
            run_dir = out / "runs" / f"{recipe}-fold{fold}"
            run_dir.mkdir(parents=True, exist_ok=True)
            train_config = _train_config(config, recipe, run_dir)
            view = RECIPES[recipe].get("input_view", "full")
            if view not in caches:
                caches[view] = load_cache(config, samples, log, view)
            cache = caches[view]
            lung_focus = RECIPES[recipe].get("lung_focus", 0.0)
            if lung_focus and masks is None:
                masks = cached_training_masks(config.out_dir, cache, log)
            model, state = _fit_fold(train_config, cache[train_idx], targets[train_idx], run_dir, log,
                                     RECIPES[recipe].get("ema_momentum", 0.0), lung_focus,
                                     masks[train_idx] if lung_focus else None)
            scores = score_held_out(forward_for(model), cache[held], [samples[i] for i in held])
            atomic_json(target, {"recipe": recipe, "fold": fold, "overrides": RECIPES[recipe],
                                  "epochs": state["epoch"], "epoch_seconds": state["seconds"],
                                  "train_images": int(len(train_idx)), **scores})
            log(f"{recipe} fold {fold}: AUROC {scores['auroc']:.4f}, shifted {scores['shifted_auroc_mean']:.4f}, "
                f"viral-vs-normal {scores['viral_vs_normal_auroc']:.4f}, TTA {scores['tta_auroc']:.4f}")
            written.append(target)
    return written
