"""PACS round-trip benchmark: prints ONE JSON object.

    python bench/pacs.py [--images 20] [--model NAME]

A modality (pynetdicom, one association) sends --images chest X-rays (the
full-resolution sample wrapped as 8-bit DX files) to an in-process node with
the model; when Orthanc is installed the node sends the SR + secondary
capture of each image there. Measures:

- send_s: the modality's C-STORE time for all images (receive + atomic write);
- screened_s: first C-STORE to the last result stored (screening with Grad-CAM);
- delivered_s: first C-STORE to the last SR/SC held by Orthanc (null without it);
- images_per_s: images / delivered_s (or screened_s).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]  # the tests' DICOM and Orthanc helpers
SAMPLE_DIR = REPO_ROOT.parent / "shared" / "data" / "fullres_sample"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--model", default=None)
    args = parser.parse_args(argv)

    from pydicom.uid import generate_uid

    from core.pacs.listener import ListenerConfig
    from core.pacs.nodes import Node
    from core.pacs.screening_adapter import ScreeningAdapter
    from core.pacs.service import PacsService, ServiceConfig
    from core.screening.screener import configure_for_screening
    from core.reading.store import ResultStore
    from orthanc_server import ORTHANC_BINARY, ORTHANC_AET, Orthanc, wait_for
    from pacs_fixtures import NODE_AET, c_store
    from pacs_helpers import from_image

    sources = sorted(SAMPLE_DIR.glob("*/*.jpeg"))
    if not sources:
        print(json.dumps({"error": f"no sample images in {SAMPLE_DIR}"}))
        return 1
    configure_for_screening()
    adapter = ScreeningAdapter(args.model)
    study = generate_uid()
    datasets = [from_image(sources[i % len(sources)], study, i + 1) for i in range(args.images)]
    with tempfile.TemporaryDirectory(prefix="pneumoscan-bench-") as temp, ResultStore(Path(temp) / "r.db") as store:
        orthanc = Orthanc(Path(temp) / "orthanc", {NODE_AET: ("127.0.0.1", 104)}).start() if ORTHANC_BINARY else None
        node = Node(ORTHANC_AET, "127.0.0.1", orthanc.dicom_port) if orthanc else None
        config = ServiceConfig(listener=ListenerConfig(0, NODE_AET), inbox=Path(temp) / "inbox",
                               send_results_to=node, min_free_bytes=0)
        service = PacsService(config, adapter=adapter, store=store).start()
        try:
            started = time.perf_counter()
            statuses = c_store(service.port, datasets)
            send_s = time.perf_counter() - started
            service.wait_idle()
            screened_s = time.perf_counter() - started
            delivered_s = None
            if orthanc:
                wait_for(lambda: service.outbox.pending_count() == 0 and service.outbox.sent_count()
                         == 2 * args.images, timeout=600, interval=0.05)
                delivered_s = time.perf_counter() - started
        finally:
            service.stop()
            if orthanc:
                orthanc.stop()
    mean_mpix = sum(int(ds.Rows) * int(ds.Columns) for ds in datasets) / len(datasets) / 1e6
    print(json.dumps({
        "images": args.images, "model": adapter.loaded.card.label, "device": adapter.screener.device,
        "mean_megapixels": round(mean_mpix, 2), "stored_ok": statuses.count(0),
        "send_s": round(send_s, 2), "screened_s": round(screened_s, 2),
        "delivered_s": None if delivered_s is None else round(delivered_s, 2),
        "images_per_s": round(args.images / (delivered_s or screened_s), 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
