import numpy as np
import pytest

from core.training.metrics import binary_metrics, threshold_for_sensitivity


def test_binary_metrics_match_hand_counts():
    y = [1, 1, 1, 1, 0, 0, 0, 0]
    p = [0.9, 0.8, 0.6, 0.2, 0.7, 0.3, 0.1, 0.05]
    m = binary_metrics(y, p, threshold=0.5)
    assert (m["tp"], m["fn"], m["fp"], m["tn"]) == (3, 1, 1, 3)
    assert m["sensitivity"] == pytest.approx(0.75)
    assert m["specificity"] == pytest.approx(0.75)
    assert m["precision"] == pytest.approx(0.75)
    assert m["npv"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["auroc"] == pytest.approx(13 / 16)  # 13 of 16 positive-negative pairs ranked right


def test_threshold_reaches_target_sensitivity_with_best_specificity():
    y = np.array([1] * 10 + [0] * 10)
    p = np.concatenate([np.linspace(0.95, 0.5, 10), np.linspace(0.6, 0.0, 10)])
    t = threshold_for_sensitivity(y, p, target=0.9)
    pred = p >= t
    assert pred[y == 1].mean() >= 0.9
    # The next higher score as threshold would miss the target.
    higher = np.sort(np.unique(p[p > t]))[0]
    assert (p >= higher)[y == 1].mean() < 0.9


def test_threshold_for_full_sensitivity_is_the_lowest_positive_score():
    y = [1, 1, 0, 0]
    p = [0.8, 0.3, 0.4, 0.1]
    assert threshold_for_sensitivity(y, p, 1.0) == pytest.approx(0.3)


def test_threshold_needs_positives():
    with pytest.raises(ValueError):
        threshold_for_sensitivity([0, 0], [0.1, 0.2], 0.9)


def test_stored_threshold_never_rises_above_the_chosen_one():
    from core.training.metrics import storable_threshold

    y = [1, 1, 0]
    p = [0.49880049, 0.9, 0.1]  # rounding to nearest would give 0.4988005 > the positive's score
    t = storable_threshold(threshold_for_sensitivity(y, p, 1.0))
    assert t <= 0.49880049 and t == 0.4988


def test_threshold_is_the_highest_even_between_positives_in_a_row():
    # Ranked: 4 positives, 2 negatives, 1 positive, 1 negative. Sensitivity 0.4 is
    # first reached at 0.8; a threshold of 0.6 would reach it too, with no gain.
    y = [1, 1, 1, 1, 0, 0, 1, 0]
    p = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]
    assert threshold_for_sensitivity(y, p, 0.4) == pytest.approx(0.8)
    assert threshold_for_sensitivity(y, p, 0.8) == pytest.approx(0.6)
    assert threshold_for_sensitivity(y, p, 1.0) == pytest.approx(0.3)
