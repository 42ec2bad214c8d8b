"""`pneumoscan-cli train`: train a model on a labelled folder and register it."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model on NORMAL/PNEUMONIA sub-folders")
    p.add_argument("folder", nargs="?", help="folder with NORMAL and PNEUMONIA sub-folders")
    p.add_argument("--arch", choices=("mobilenet_v2", "custom_cnn"), default="custom_cnn")
    p.add_argument("--name", help="model name (default: the architecture)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs to train (default 20); with --resume, a new planned length for the run")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--val-fraction", type=float, default=0.15)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", default="random", help="random, imagenet, or a model name / .keras path to fine-tune")
    p.add_argument("--target-sensitivity", type=float, default=0.97)
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--patience", type=int, default=6, help="early-stopping patience in epochs (validation AUROC)")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--augment-level", choices=("basic", "acquisition"), default="acquisition",
                   help="acquisition (default) adds gamma, blur, noise, JPEG and resampling shifts")
    p.add_argument("--no-standardise", action="store_true",
                   help="leave out the per-image percentile stretch at the model's input (v1 behaviour)")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--no-class-weights", action="store_true")
    p.add_argument("--lung-focus", type=float, default=0.0, metavar="WEIGHT",
                   help="penalise Grad-CAM evidence outside the estimated lung fields (0.3 was cross-validated)")
    p.add_argument("--run-dir", help="folder for checkpoints (default: a new one in the user data folder)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--finalise", metavar="RUN_DIR",
                   help="register a run's best checkpoint without training further (a run cut short)")
    p.add_argument("--checkpoint", help="with --finalise: the checkpoint to use (default RUN_DIR/best.keras)")
    p.add_argument("--output", help="where to save the model (default: the user's models folder)")
    p.set_defaults(func=run)


DEFAULT_EPOCHS = 20


def _check_epochs(args) -> None:
    for flag, value, low, high in (("--epochs", args.epochs, 1, 10_000), ("--batch-size", args.batch_size, 1, 4096)):
        if value is not None and not low <= value <= high:
            raise ValueError(f"{flag} must be between {low} and {high}")


def _config_from_args(args):
    from core.training.trainer import TrainConfig

    if not args.folder:
        raise ValueError("FOLDER is required unless --resume is given")
    if not Path(args.folder).is_dir():
        raise ValueError(f"folder not found: {args.folder}")
    _check_epochs(args)
    if not 0 < args.val_fraction < 0.5:
        raise ValueError("--val-fraction must be between 0 and 0.5")
    if not 0 < args.target_sensitivity <= 1:
        raise ValueError("--target-sensitivity must be in (0, 1]")
    if not args.lr > 0:
        raise ValueError("--lr must be positive")
    from core.models.registry import ModelError, validate_name

    try:  # before hours of training, not at save time
        validate_name(args.name or args.arch)
    except ModelError as exc:
        raise ValueError(f"--name: {exc}") from None
    return TrainConfig(
        folder=str(Path(args.folder).resolve()), arch=args.arch, name=args.name or args.arch,
        epochs=args.epochs or DEFAULT_EPOCHS, batch_size=args.batch_size, lr=args.lr, val_fraction=args.val_fraction,
        seed=args.seed, init=args.init, target_sensitivity=args.target_sensitivity,
        input_size=args.input_size, augment=not args.no_augment, augment_level=args.augment_level,
        standardise=not args.no_standardise, label_smoothing=args.label_smoothing,
        class_weighting=not args.no_class_weights, patience=args.patience, run_dir=args.run_dir,
        lung_focus=args.lung_focus,
        command="pneumoscan-cli train " + shlex.join(sys.argv[2:] if sys.argv[1:2] == ["train"] else []),
    )


def run(args) -> int:
    from core.training import trainer as training
    from core.models.registry import ModelError, next_version, save_model, save_scope_detector

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        if args.finalise:
            config = training.load_run_config(args.finalise)
        elif args.resume:
            config = training.load_run_config(args.resume)
            _check_epochs(args)
            if args.epochs is not None:  # the trainer rebuilds the schedule and records the change
                config.epochs = args.epochs
        else:
            config = _config_from_args(args)
    except (ValueError, training.TrainingError) as exc:
        say(f"error: {exc}")
        return 2

    def on_epoch(epoch, logs):
        say(f"epoch {epoch}/{config.epochs}: loss {logs.get('loss', float('nan')):.4f} "
            f"val_loss {logs['val_loss']:.4f} val_auroc {logs['val_auroc']:.4f} "
            f"lr {logs['lr']:.2e} ({logs['seconds']:.0f} s)")

    say(f"run folder: {config.run_dir or '(new)'}")
    try:
        if args.finalise:
            outcome = training.finalise_run(args.finalise, args.checkpoint, log=say)
        else:
            outcome = training.train(config, on_epoch=on_epoch, resume=bool(args.resume), log=say)
    except training.TrainingError as exc:
        say(f"error: {exc}")
        return 2
    except KeyboardInterrupt:
        say(f"interrupted; continue with: pneumoscan-cli train --resume {config.run_dir}")
        return 130
    out_dir = Path(args.output) if args.output else None
    if out_dir is None:
        outcome.card.version = next_version(config.name)
    try:
        entry = save_model(outcome.keras_model, outcome.card, out_dir)
        if outcome.scope_detector is not None:
            entry = save_scope_detector(entry, outcome.scope_detector)
    except (OSError, ModelError) as exc:
        say(f"error: could not save the model: {exc}")
        return 1
    m = outcome.card.validation_metrics
    say(f"saved {entry.keras_path} (threshold {outcome.card.threshold:.4f}; validation AUROC {m['auroc']:.4f}, "
        f"sensitivity {m['sensitivity']:.4f}, specificity {m['specificity']:.4f})")
    acceptance = m.get("acceptance") or {}
    if not acceptance.get("validated", True):
        say(f"NOT VALIDATED: {'; '.join(acceptance['reasons'])}. The model is saved for inspection only, "
            f"marked so in its card; do not make it active (the training wizard refuses to).")
    if outcome.card.training_data.get("scope_check", "").startswith("kept"):
        say(f"scope check {outcome.card.training_data['scope_check']}")
    for path, message in outcome.unreadable:
        say(f"skipped unreadable {path}: {message}")
    return 0
