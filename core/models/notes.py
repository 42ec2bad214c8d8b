"""What a model is for, in words: the model selector's tooltip and Help > About (no widgets).

Read from the model card: `intended_use` ("use", population "description", "known_limits")
and `site_validation` (metrics on a site's own labelled images). Each statement is cut to
its first sentence so a tooltip stays readable; About lists every known limit in full.
"""
from __future__ import annotations

import html
import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(])")  # "et al. 2018" is not an end


def first_sentence(text) -> str:
    text = " ".join(str(text or "").split())
    return _SENTENCE_END.split(text, maxsplit=1)[0] if text else ""


def _limits(card) -> list[str]:
    limits = (getattr(card, "intended_use", None) or {}).get("known_limits") or []
    return [str(limit) for limit in ([limits] if isinstance(limits, str) else limits) if str(limit).strip()]


def intended_use_lines(card) -> list[str]:
    """'Use: ...', 'Population: ...', 'Known limit: ...' (first sentences); [] without a statement."""
    use = getattr(card, "intended_use", None) or {}
    population = use.get("population") or {}
    description = population.get("description", "") if isinstance(population, dict) else population
    lines = []
    if use.get("use"):
        lines.append(f"Use: {first_sentence(use['use'])}")
    if description:
        lines.append(f"Population: {first_sentence(description)}")
    lines += [f"Known limit: {first_sentence(limit)}" for limit in _limits(card)]
    return lines


def _percent(value) -> str:
    return "-" if value is None else f"{100 * float(value):.1f} %"


def site_validation_line(card) -> str:
    """'Site validation (218 images): AUROC 0.988, sensitivity 97.9 %, specificity 84.9 %' or ''."""
    metrics = (getattr(card, "site_validation", None) or {}).get("metrics") or {}
    if not any(metrics.get(k) is not None for k in ("auroc", "sensitivity", "specificity")):
        return ""
    images = f" ({metrics['n']} images)" if metrics.get("n") else ""
    auroc = "-" if metrics.get("auroc") is None else f"{float(metrics['auroc']):.3f}"
    return (f"Site validation{images}: AUROC {auroc}, sensitivity {_percent(metrics.get('sensitivity'))}, "
            f"specificity {_percent(metrics.get('specificity'))}")


def model_tooltip(entry) -> str:
    """Plain text for the model selector: what it is, what it is for, how it did at a site."""
    card = entry.card
    lines = [f"{card.label}: {card.architecture}, {card.input_size}px, created {card.created or '-'}"]
    lines += intended_use_lines(card) or ["No intended-use statement in this model's card: "
                                          "treat it as outside any validated use."]
    site = site_validation_line(card)
    if site:
        lines.append(site)
    return "\n".join(lines)


def about_model_html(card) -> str:
    """The About box's part on the current model: intended use and every known limit."""
    if card is None:
        return "<p>No model is selected.</p>"
    use = getattr(card, "intended_use", None) or {}
    population = use.get("population") or {}
    description = population.get("description", "") if isinstance(population, dict) else population
    parts = [f"<p><b>Current model: {html.escape(card.label)}</b></p>"]
    if use.get("use"):
        parts.append(f"<p><b>Intended use:</b> {html.escape(str(use['use']))}</p>")
    if description:
        parts.append(f"<p><b>Population:</b> {html.escape(str(description))}</p>")
    limits = _limits(card)
    if limits:
        items = "".join(f"<li>{html.escape(limit)}</li>" for limit in limits)
        parts.append(f"<p><b>Known limits:</b></p><ul>{items}</ul>")
    if len(parts) == 1:
        parts.append("<p>This model's card states no intended use: treat it as outside any validated use.</p>")
    site = site_validation_line(card)
    if site:
        parts.append(f"<p>{html.escape(site)}</p>")
    return "".join(parts)
