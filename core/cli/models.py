"""`pneumoscan-cli models`: list shipped and user models with their card metrics,
and choose the default model (`--set-default NAME`, `--reset-default`)."""
from __future__ import annotations

import json

from core.cli.command import add_command


def register(sub) -> None:
    p = add_command(sub, "models", run, "list the installed models and their validation metrics",
                    "List the shipped and your own models with their card metrics, or choose the default "
                    "model.")
    p.add_argument("--json", action="store_true", help="print the cards as a JSON list")
    choice = p.add_mutually_exclusive_group()
    choice.add_argument("--set-default", metavar="NAME",
                        help="make NAME ('name' or 'name vN') the default model, pinned to that version")
    choice.add_argument("--reset-default", action="store_true",
                        help="go back to the shipped default model")


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "-"


def _change_default(args) -> int:
    import sys

    from core.models.registry import ModelError, find_model, set_default_model
    from core.training.acceptance import not_validated_reason

    try:
        if args.set_default:  # the default screens every study: never a model its own evidence fails
            problem = not_validated_reason(find_model(args.set_default).card)
            if problem:
                raise ModelError(f"{problem}; it cannot be the default model")
        set_default_model(None if args.reset_default else args.set_default)
        print(f"default model: {find_model(None).label}")
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def run(args) -> int:
    from core.models.registry import ModelError, find_model, list_models

    if args.set_default or args.reset_default:
        return _change_default(args)
    entries = list_models()
    try:
        default = find_model(None).label if entries else None
    except ModelError:
        default = None
    if args.json:
        print(json.dumps([{"source": "shipped" if e.shipped else "user", "path": str(e.keras_path),
                           "default": e.label == default, **json.loads(e.card.to_json())}
                          for e in entries], indent=2))
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
    print(f"default model: {default} (change with: pneumoscan-cli models --set-default NAME)")
    return 0
