"""The model a run fits, fresh or resumed: one place for the choices every training loop
(core.training.trainer, core.training.cross_validation) must make alike.

A resume normally continues with the optimizer saved in the last checkpoint. It needs a
new optimizer when the checkpoint holds none that fits: a lung-focus run checkpoints the
plain model, not its penalty wrapper; a run whose planned length changed would keep a
learning-rate schedule decaying towards the old end. The new optimizer's schedule
continues from the step reached; its moment estimates restart.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable


def model_to_fit(last: Path | None, build: Callable, compile_fit: Callable, seed: int, epochs_done: int,
                 steps_per_epoch: int, lung_focus: float = 0.0, new_schedule: bool = False):
    """(plain, fitted): the model to checkpoint and score, and the model to fit (the same
    one, or core.training.lung_focus's penalty wrapper around it). `last`: the checkpoint
    to resume from, or None for a fresh model from `build()` under `seed`."""
    import keras

    import core.models.layers  # noqa: F401  custom layers for reloading

    fresh_optimizer = last is None or bool(lung_focus) or new_schedule
    if last is not None:
        plain = keras.models.load_model(last, compile=not fresh_optimizer, safe_mode=True)
    else:
        keras.utils.set_random_seed(seed)
        plain = build()
    fitted = plain
    if lung_focus:
        from core.training.lung_focus import training_wrapper
        from core.training.run_config import TrainingError

        try:
            fitted = training_wrapper(plain, lung_focus)
        except ValueError as exc:  # a model whose head the penalty cannot read: say so, do not crash
            raise TrainingError(f"the lung focus cannot be used with this model: {exc}") from None
    if fresh_optimizer:
        compile_fit(fitted)
        if epochs_done:
            fitted.optimizer.build(fitted.trainable_variables)
            fitted.optimizer.iterations.assign(epochs_done * steps_per_epoch)
    return plain, fitted
