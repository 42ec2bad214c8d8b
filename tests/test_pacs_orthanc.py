"""A real PACS (Orthanc on loopback) receives the SR and the secondary capture of every image."""
from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.uid import generate_uid

from core.pacs.nodes import Node
from core.pacs.results_dicom import read_sr
from orthanc_server import ORTHANC_AET, Orthanc, require_orthanc, wait_for
from pacs_fixtures import NODE_AET, adapter, c_store, make_service, store, tiny_model_entry  # noqa: F401
from pacs_helpers import make_dataset

SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.33"  # Comprehensive SR
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"


@pytest.fixture
def orthanc(tmp_path):
    require_orthanc()
    server = Orthanc(tmp_path / "orthanc", {NODE_AET: ("127.0.0.1", 104)}).start()
    yield server
    server.stop()


def results_in(orthanc: Orthanc) -> dict[str, list[dict]]:
    found = {"SR": [], "SC": []}
    for tags in orthanc.instances():
        kind = {SR_CLASS: "SR", SC_CLASS: "SC"}.get(tags.get("SOPClassUID"))
        if kind:
            found[kind].append(tags)
    return found


def count_results(orthanc: Orthanc) -> tuple[int, int]:
    found = results_in(orthanc)
    return len(found["SR"]), len(found["SC"])


def test_every_image_gets_an_sr_and_a_capture_matching_the_store(tmp_path, orthanc, adapter, store):  # noqa: F811
    node = Node(ORTHANC_AET, "127.0.0.1", orthanc.dicom_port)
    service = make_service(tmp_path, adapter, store, send_results_to=node).start()
    study = generate_uid()
    images = [make_dataset(study, seed=i, instance=i + 1) for i in range(3)]
    try:
        assert c_store(service.port, images) == [0, 0, 0]
        assert wait_for(lambda: count_results(orthanc) == (3, 3), timeout=60), count_results(orthanc)
        assert wait_for(lambda: service.outbox.pending_count() == 0, timeout=10)
    finally:
        service.stop()

    found = results_in(orthanc)
    sources = {str(ds.SOPInstanceUID): ds for ds in images}
    seen = set()
    for tags in found["SR"]:
        sr = pydicom.dcmread(io.BytesIO(orthanc.file(tags["_id"])))
        values = read_sr(sr)
        source = sources[values.source_sop_uid]
        seen.add(values.source_sop_uid)
        stored = store.get_result(service.inbox.root / study / f"{source.SOPInstanceUID}.dcm", adapter.model_hash)
        assert stored is not None
        assert values.call == stored.prediction
        assert values.probability == pytest.approx(stored.probability, abs=1e-6)
        assert values.threshold == pytest.approx(stored.threshold)
        assert (values.model, values.model_version, values.model_hash) == (stored.model, stored.model_version,
                                                                          stored.model_hash)
        assert values.scope == ""
        assert sr.StudyInstanceUID == study and sr.SeriesInstanceUID != source.SeriesInstanceUID
        assert sr.PatientID == source.PatientID
    assert seen == set(sources)

    for tags in found["SC"]:
        sc = pydicom.dcmread(io.BytesIO(orthanc.file(tags["_id"])))
        assert sc.StudyInstanceUID == study
        assert list(sc.ImageType)[:2] == ["DERIVED", "SECONDARY"] and sc.BurnedInAnnotation == "YES"
        assert sc.SourceImageSequence[0].ReferencedSOPInstanceUID in sources
        assert sc.pixel_array.shape[-1] == 3
    new_uids = [t["SOPInstanceUID"] for kind in found.values() for t in kind]
    assert len(set(new_uids)) == 6 and not set(new_uids) & set(sources)
    assert len({t["SeriesInstanceUID"] for t in found["SR"]}) == 1  # one result series per kind and model


def test_nothing_is_lost_when_the_pacs_and_the_node_restart(tmp_path, orthanc, adapter, store):  # noqa: F811
    node = Node(ORTHANC_AET, "127.0.0.1", orthanc.dicom_port)
    study = generate_uid()
    service = make_service(tmp_path, adapter, store, send_results_to=node).start()
    try:
        assert c_store(service.port, [make_dataset(study, seed=10)]) == [0]
        assert wait_for(lambda: count_results(orthanc) == (1, 1), timeout=60)
        orthanc.stop()  # the PACS goes down mid-run
        assert c_store(service.port, [make_dataset(study, seed=11), make_dataset(study, seed=12)]) == [0, 0]
        assert service.wait_idle(60)
        assert wait_for(lambda: all(i.attempts >= 1 for i in service.outbox.pending()), timeout=30)
        assert service.outbox.pending_count() == 4
    finally:
        service.stop()  # the node restarts too, with results still waiting

    orthanc.start()
    restarted = make_service(tmp_path, adapter, store, send_results_to=node).start()
    try:
        assert wait_for(lambda: count_results(orthanc) == (3, 3), timeout=60), count_results(orthanc)
        assert wait_for(lambda: restarted.outbox.pending_count() == 0, timeout=10)
    finally:
        restarted.stop()
    assert count_results(orthanc) == (3, 3)  # and nothing twice


def test_export_dicom_sends_a_study_to_the_pacs(tmp_path, orthanc, tiny_model_entry, monkeypatch, capsys):  # noqa: F811
    from core import cli
    from pacs_helpers import write_dataset

    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    study = generate_uid()
    for i in range(2):
        write_dataset(make_dataset(study, seed=20 + i, instance=i + 1), tmp_path / "study" / f"{i}.dcm")
    code = cli.main(["export-dicom", str(tmp_path / "study"), "--send-to",
                     f"{ORTHANC_AET}@127.0.0.1:{orthanc.dicom_port}", "--ae-title", NODE_AET,
                     "--model", str(tiny_model_entry.keras_path)])
    assert code == 0, capsys.readouterr().err
    assert count_results(orthanc) == (2, 2)
