"""Helpers shared by the cross-validation tests."""
from __future__ import annotations

import pytest


def cut_after_one_epoch(monkeypatch, config, recipes, only_folds=None):
    """Run the protocol with each fold cut after its first epoch, as a session's end would."""
    import core.training.cross_validation as cv

    real_fit = cv._fit_fold

    def one_epoch_then_stop(train_config, *args, **kwargs):
        train_config.epochs = 1
        real_fit(train_config, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(cv, "_fit_fold", one_epoch_then_stop)
    with pytest.raises(KeyboardInterrupt):
        cv.run_protocol(config, recipes, only_folds=only_folds, log=lambda m: None)
    monkeypatch.setattr(cv, "_fit_fold", real_fit)
