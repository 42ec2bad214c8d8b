"""Whether a trained model's own held-out evidence lets it be made active.

One rule for the CLI, the wizard and fine-tuning: the held-out images must be
enough to choose and check an operating point (core.training.metrics.evidence_shortfall,
the wizard's minimum), and the validation sensitivity at the model's threshold
must reach its target. "Reach" allows for sampling noise only: a sensitivity
below the target counts as a miss when even the upper end of its 95 % Wilson
interval stays below the target (0.964 on 277 positives passes a 0.97 target;
0.50 on 14 positives does not). A model that fails is still saved, so nothing
is lost, but its card says it is not validated and why.
"""
from __future__ import annotations

from core.training.metrics import evidence_shortfall, wilson_interval

NOT_VALIDATED_NOTE = "NOT VALIDATED"


def validation_problems(metrics: dict, target_sensitivity: float, held_out_counts: tuple[int, int] | None = None
                        ) -> list[str]:
    """Why the held-out `metrics` (core.training.metrics.binary_metrics at the model's
    threshold) cannot back this model as active-ready; an empty list when they can.

    `held_out_counts` (positives, negatives): all held-out images, when the metrics
    cover only part of them (the trainer's selection half); the wizard counts the same.
    """
    positives = int(metrics.get("tp", 0)) + int(metrics.get("fn", 0))
    negatives = int(metrics.get("tn", 0)) + int(metrics.get("fp", 0))
    held_pos, held_neg = held_out_counts if held_out_counts is not None else (positives, negatives)
    problems = []
    shortfall = evidence_shortfall(int(held_pos), int(held_neg), target_sensitivity)
    if shortfall is not None:
        problems.append(f"held-out evidence: {shortfall}")
    if positives:
        sensitivity = metrics["tp"] / positives
        interval = wilson_interval(int(metrics["tp"]), positives)
        if sensitivity < target_sensitivity and (interval is None or interval[1] < target_sensitivity):
            problems.append(f"validation sensitivity {sensitivity:.1%} ({metrics['tp']}/{positives}, 95 % interval "
                            f"up to {interval[1]:.1%}) misses its target {target_sensitivity:.0%}")
    return problems


def acceptance_record(metrics: dict, target_sensitivity: float, held_out_counts: tuple[int, int] | None = None
                      ) -> dict:
    """What the card keeps under validation_metrics["acceptance"]."""
    problems = validation_problems(metrics, target_sensitivity, held_out_counts)
    return {"validated": not problems, "reasons": problems, "target_sensitivity": target_sensitivity,
            "rule": "core.training.acceptance.validation_problems: enough held-out images "
                    "(core.training.metrics.evidence_shortfall) and validation sensitivity at the threshold "
                    "not below the target beyond its 95 % Wilson interval"}


def record_acceptance(card, metrics: dict, target_sensitivity: float,
                      held_out_counts: tuple[int, int] | None = None) -> dict:
    """Judge `metrics` (at the card's threshold) and write the verdict into the card: the
    acceptance record, and a NOT VALIDATED note first in its notes (an earlier verdict's note
    is replaced, so a threshold the reader moved is judged afresh)."""
    earlier = (card.validation_metrics or {}).get("acceptance") or {}
    record = acceptance_record(metrics, target_sensitivity, held_out_counts)
    card.validation_metrics["acceptance"] = record
    notes = card.notes or ""
    old_note = _verdict_note(earlier.get("reasons") or [])
    if old_note and notes.startswith(old_note):
        notes = notes[len(old_note):]
    card.notes = _verdict_note(record["reasons"]) + notes
    return record


def _verdict_note(reasons: list[str]) -> str:
    return f"{NOT_VALIDATED_NOTE}: {'; '.join(reasons)}. " if reasons else ""


def not_validated_reason(card) -> str | None:
    """Why a card's model may not be made active or the default (None when nothing says so)."""
    if is_validated(card):
        return None
    reasons = (card.validation_metrics.get("acceptance") or {}).get("reasons") or ["its card says so"]
    return f"{card.name} v{card.version} is not validated: {'; '.join(reasons)}"


def is_validated(card) -> bool:
    """False only for cards that recorded a failed acceptance (older cards carry no record)."""
    record = (getattr(card, "validation_metrics", None) or {}).get("acceptance") or {}
    return bool(record.get("validated", True))
