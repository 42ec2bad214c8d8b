"""Screening throughput benchmark: prints ONE JSON object.

    python bench/screening.py [--images 1000] [--model NAME] [--batch-size 16]

Screens the full-resolution sample (shared/data/fullres_sample next to the
repo), repeated to --images files, and measures in one run:

- images_per_s_end_to_end: Screener.screen (decode + resize + inference);
- images_per_s_model_only: the same compiled forward on already-decoded inputs;
- ratio: end-to-end / model-only (how well decoding hides behind inference);
- naive_images_per_s: the published notebooks' loop (cv2.imread, resize,
  model.predict on one image), on a subset;
- images_per_s_study: core.reading.study_screening.screen_study as the app runs it
  (decode once for model input + thumbnail, results committed to a scratch store);
- gradcam_images_per_s: end-to-end with Grad-CAM on (gradcam_ratio: against the
  same pass on ready inputs);
- scope_check / scope_cost: whether the model's scope detector ran (with the
  card's temperature, every pass above includes it) and what it adds to the
  model-only step (core.models.scope; fit one with `pneumoscan-cli fit-scope`);
- peak_rss_mb: the process's peak resident memory.

Timings on a shared machine (e.g. with training running) are noisy.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))  # run as a script from anywhere
SAMPLE_DIR = REPO_ROOT.parent / "shared" / "data" / "fullres_sample"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000, help="files to screen (sample repeated)")
    parser.add_argument("--model", default=None,
                        help="registered model (default: the registry's default, mobilenet_v2)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--decode-workers", type=int, default=None)
    parser.add_argument("--intra-op-threads", type=int, default=None,
                        help="TensorFlow intra-op threads; 0 = TensorFlow's default (all cores); "
                             "default: the screening split (cores left by the decode threads)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="alternate end-to-end and model-only timing in this many rounds, so "
                             "background load drifts hit both alike")
    parser.add_argument("--naive-images", type=int, default=100, help="subset for the naive loop")
    parser.add_argument("--skip-gradcam", action="store_true")
    return parser.parse_args(argv)


def load_or_build_model(name):
    """The named model, else the registry's default (mobilenet_v2) model, else an
    untrained MobileNetV2 at 224 (same architecture and cost, so timings hold).

    The default is looked up by name, not as "whatever is installed", so a stray
    test model in the registry cannot stand in for the shipped one.
    """
    from core.models.registry import DEFAULT_MODEL, LoadedModel, ModelCard, ModelError, load_model

    try:
        loaded = load_model(name or DEFAULT_MODEL)
        return loaded, f"registered: {loaded.card.label}"
    except ModelError as exc:
        if name:
            raise SystemExit(f"error: {exc}")
        from core.models.architectures import GRADCAM_LAYER, build_model

        card = ModelCard(name="mobilenet_v2-untrained", architecture="mobilenet_v2", input_size=224,
                         threshold=0.5, gradcam_layer=GRADCAM_LAYER, sha256="untrained")
        return LoadedModel(build_model("mobilenet_v2", 224), card), f"untrained mobilenet_v2 at 224 ({exc})"


def sample_paths(count: int) -> list[Path]:
    from core.imaging.discovery import discover

    unique = discover(SAMPLE_DIR)
    if not unique:
        raise SystemExit(f"error: no images in {SAMPLE_DIR}")
    return list(itertools.islice(itertools.cycle(unique), count))


def time_end_to_end(screener, paths) -> float:
    """Seconds to screen `paths` (results are counted, not kept)."""
    started = time.perf_counter()
    count = sum(1 for result in screener.screen(paths) if result.ok)
    elapsed = time.perf_counter() - started
    if count != len(paths):
        raise SystemExit(f"error: only {count} of {len(paths)} sample files screened")
    return elapsed


def time_study(screener, paths) -> float:
    """Images/s through screen_study (store writes and thumbnails included), nothing reused."""
    import tempfile

    from core.reading.store import ResultStore
    from core.reading.study_screening import screen_study

    with tempfile.TemporaryDirectory(prefix="pneumoscan-bench-") as scratch, \
            ResultStore(Path(scratch) / "bench.sqlite3") as store:
        started = time.perf_counter()
        count = sum(1 for item in screen_study(paths, screener.loaded_model, store, gradcam=screener.gradcam,
                                               rescreen=True, screener=screener, thumbnail_side=56)
                    if item.result.ok)
        elapsed = time.perf_counter() - started
    if count != len(paths):
        raise SystemExit(f"error: only {count} of {len(paths)} sample files screened")
    return len(paths) / elapsed


def decoded_batches(screener, paths) -> list:
    """A few batches of model inputs decoded beforehand (for the model-only timing)."""
    import numpy as np

    from core.imaging.loader import load_image
    from core.imaging.preprocessing import film_to_model_input

    size, bs = screener.input_size, screener.batch_size
    decoded = np.stack([film_to_model_input(load_image(p, max_side=screener.max_side).pixels, size)[0]
                        for p in paths[:8 * bs]])
    return [decoded[i:i + bs] for i in range(0, len(decoded) - bs + 1, bs)]


def time_model_only(screener, batches, total: int) -> float:
    """Seconds for the same compiled pass over `total` images of ready inputs."""
    done = 0
    started = time.perf_counter()
    for batch in itertools.cycle(batches):
        if done >= total:
            break
        screener.predict_batch(batch)
        done += len(batch)
    return time.perf_counter() - started


def warm_up(screener, paths) -> None:
    """Trace the pass and let oneDNN build its kernels for a full and a partial batch."""
    list(screener.screen(paths[:screener.batch_size * 2 + screener.batch_size // 2]))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def time_rounds(screener, paths, rounds: int) -> dict:
    """End-to-end and model-only throughput, alternated in `rounds` rounds.

    Alternating means a change in background load hits both alike. CPU time
    per image is reported too: unlike wall time, it barely depends on what
    else runs on the machine.
    """
    batches = decoded_batches(screener, paths)
    warm_up(screener, paths)
    chunk = -(-len(paths) // rounds)
    wall = {"e2e": 0.0, "model": 0.0}
    cpu = {"e2e": 0.0, "model": 0.0}
    for start in range(0, len(paths), chunk):
        part = paths[start:start + chunk]
        for key, run in (("e2e", lambda: time_end_to_end(screener, part)),
                         ("model", lambda: time_model_only(screener, batches, len(part)))):
            before = cpu_seconds()
            wall[key] += run()
            cpu[key] += cpu_seconds() - before
    n = len(paths)
    return {"e2e": n / wall["e2e"], "model": n / wall["model"],
            "e2e_cpu_ms": 1000 * cpu["e2e"] / n, "model_cpu_ms": 1000 * cpu["model"] / n}


def idle_core_ratio(timed: dict, intra_op, workers: int):
    """Estimated ratio when TensorFlow's threads and the decode threads each have
    their own idle cores (scaling assumed linear); None when they share cores."""
    if not isinstance(intra_op, int) or intra_op + workers > (os.cpu_count() or 1):
        return None
    model_s = timed["model_cpu_ms"] / intra_op
    decode_s = max(timed["e2e_cpu_ms"] - timed["model_cpu_ms"], 0.0) / workers
    return round(model_s / max(model_s, decode_s), 3)


def time_naive(keras_model, paths, size: int) -> float:
    """The notebooks' loop: imread, resize, predict one image at a time."""
    import cv2
    import numpy as np

    keras_model.predict(np.zeros((1, size, size, 1), np.float32), verbose=0)  # warm-up
    started = time.perf_counter()
    for path in paths:
        image = cv2.resize(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), (size, size))
        keras_model.predict((image.astype(np.float32) / 255.0)[None, ..., None], verbose=0)
    return len(paths) / (time.perf_counter() - started)


def scope_model_cost(loaded, screener, paths, batch_size: int, workers: int):
    """Model-only time with the scope check over without it, minus one (None without a detector)."""
    import dataclasses

    from core.screening.screener import Screener

    if getattr(loaded, "scope_detector", None) is None:
        return None
    plain = Screener(dataclasses.replace(loaded, scope_detector=None), batch_size=batch_size,
                     decode_workers=workers)
    batches = decoded_batches(screener, paths)
    plain.predict_batch(batches[0])  # trace
    total = 4 * len(batches) * batch_size
    return round(time_model_only(screener, batches, total) / time_model_only(plain, batches, total) - 1.0, 3)


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from core.screening.screener import (Screener, configure_for_screening, configure_tensorflow,
                                default_decode_workers)

    if args.intra_op_threads is None:
        device = configure_for_screening()  # before any TF op
    else:
        device = configure_tensorflow(intra_op_threads=args.intra_op_threads or None)
    import tensorflow as tf

    intra_op = tf.config.threading.get_intra_op_parallelism_threads() or "all cores"
    loaded, model_source = load_or_build_model(args.model)
    paths = sample_paths(args.images)
    workers = args.decode_workers or default_decode_workers()

    screener = Screener(loaded, batch_size=args.batch_size, decode_workers=workers)
    timed = time_rounds(screener, paths, args.rounds)
    end_to_end, model_only = timed["e2e"], timed["model"]
    study = time_study(screener, paths)
    scope_cost = scope_model_cost(loaded, screener, paths, args.batch_size, workers)
    naive = time_naive(loaded.keras_model, paths[:args.naive_images], loaded.input_size)
    gradcam = gradcam_model = None
    if not args.skip_gradcam:
        cam_screener = Screener(loaded, batch_size=args.batch_size, gradcam=True, decode_workers=workers)
        warm_up(cam_screener, paths)
        gradcam = len(paths) / time_end_to_end(cam_screener, paths)
        sample = max(1, len(paths) // args.rounds)
        gradcam_model = sample / time_model_only(cam_screener, decoded_batches(cam_screener, paths), sample)

    print(json.dumps({
        "images": len(paths),
        "model": model_source,
        "device": device,
        "images_per_s_end_to_end": round(end_to_end, 2),
        "images_per_s_model_only": round(model_only, 2),
        "ratio": round(end_to_end / model_only, 3),
        "images_per_s_study": round(study, 2),
        "cpu_ms_per_image_end_to_end": round(timed["e2e_cpu_ms"], 2),
        "cpu_ms_per_image_model_only": round(timed["model_cpu_ms"], 2),
        # What the ratio would be with the two cores to ourselves (TensorFlow on
        # one, decoding on the other): an estimate from the CPU times above.
        "ratio_estimate_idle_cores": idle_core_ratio(timed, intra_op, workers),
        "naive_images_per_s": round(naive, 2),
        "naive_images": min(args.naive_images, len(paths)),
        "speedup_vs_naive": round(end_to_end / naive, 2),
        "gradcam_images_per_s": None if gradcam is None else round(gradcam, 2),
        "gradcam_model_only_images_per_s": None if gradcam is None else round(gradcam_model, 2),
        "gradcam_cost": None if gradcam is None else round(end_to_end / gradcam - 1.0, 3),
        "gradcam_ratio": None if gradcam is None else round(gradcam / gradcam_model, 3),
        "scope_check": getattr(loaded, "scope_detector", None) is not None,
        "scope_cost": scope_cost,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "batch_size": args.batch_size,
        "decode_workers": workers,
        "intra_op_threads": intra_op,
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
