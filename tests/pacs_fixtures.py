"""Shared fixtures for the PACS tests: a tiny registered model, a running node, a sending modality."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine_models import save_tiny_model

MODALITY_AET = "MODALITY"
NODE_AET = "PNEUMOSCAN"


@pytest.fixture(scope="session")
def tiny_model_entry(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("pacs-models"), name="tinypacs", size=32)


@pytest.fixture(scope="session")
def adapter(tiny_model_entry):
    from core.pacs.screening_adapter import ScreeningAdapter
    from core.models.registry import load_model

    return ScreeningAdapter(loaded_model=load_model(tiny_model_entry))


@pytest.fixture
def store(tmp_path):
    from core.reading.store import ResultStore

    with ResultStore(tmp_path / "results.sqlite3") as store:
        yield store


def make_service(tmp_path: Path, adapter, store, **options):
    from core.pacs.listener import ListenerConfig
    from core.pacs.service import PacsService, ServiceConfig

    listener = ListenerConfig(0, NODE_AET, "127.0.0.1", options.pop("allow_calling", []))
    config = ServiceConfig(listener=listener, inbox=tmp_path / "inbox",
                           min_free_bytes=options.pop("min_free_bytes", 0),
                           retry_base_delay=options.pop("retry_base_delay", 0.2),
                           retry_max_delay=options.pop("retry_max_delay", 1.0), **options)
    return PacsService(config, adapter=adapter, store=store)


def associate(port: int, sop_classes, syntaxes, calling: str = MODALITY_AET, called: str = NODE_AET):
    from pynetdicom import AE

    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.connection_timeout = 10
    for sop_class in sop_classes:
        for syntax in syntaxes:  # one context each: the acceptor picks a single syntax per context
            ae.add_requested_context(sop_class, syntax)
    return ae.associate("127.0.0.1", port, ae_title=called)


def c_store(port: int, datasets, calling: str = MODALITY_AET) -> list[int]:
    """Send data sets as a modality would; the C-STORE status of each (-1 when none came back)."""
    classes = sorted({str(ds.SOPClassUID) for ds in datasets})
    syntaxes = sorted({str(ds.file_meta.TransferSyntaxUID) for ds in datasets})
    assoc = associate(port, classes, syntaxes, calling=calling)
    assert assoc.is_established, "association was not accepted"
    try:
        statuses = []
        for ds in datasets:
            status = assoc.send_c_store(ds)
            statuses.append(int(status.Status) if status and "Status" in status else -1)
        return statuses
    finally:
        assoc.release()
