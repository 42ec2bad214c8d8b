"""`pneumoscan-cli models`: list shipped and user models with their card metrics."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("models", help="list the installed models and their validation metrics")
    p.add_argument("--json", action="store_true", help="print the cards as a JSON list")
    p.set_defaults(func=run)


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def run(args) -> int:
    from core.registry import list_models

    entries = list_models()
    if args.json:
        print(json.dumps([{"source": "shipped" if e.shipped else "user", "path": str(e.keras_path),
                           **json.loads(e.card.to_json())} for e in entries], indent=2))
        return 0
    if not entries:
        print("no models installed")
        return 0
    print(f"{'model':<28}{'source':<9}{'arch':<14}{'input':>6}{'thresh':>8}{'AUROC':>7}{'sens':>7}{'spec':>7}  created")
    for e in entries:
        m = e.card.validation_metrics
        print(f"{e.label:<28}{'shipped' if e.shipped else 'user':<9}{e.card.architecture:<14}"
              f"{e.card.input_size:>6}{e.card.threshold:>8.3f}{_fmt(m.get('auroc')):>7}"
              f"{_fmt(m.get('sensitivity')):>7}{_fmt(m.get('specificity')):>7}  {e.card.created}")
    return 0
