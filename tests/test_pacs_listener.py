"""The C-STORE/C-ECHO node with pynetdicom as the sending modality, on loopback."""
from __future__ import annotations

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, RLELossless, generate_uid

from pacs_fixtures import adapter, associate, c_store, make_service, store, tiny_model_entry  # noqa: F401
from orthanc_server import wait_for
from pacs_helpers import CR_IMAGE, DX_FOR_PRESENTATION, make_dataset, write_dataset

VERIFICATION = "1.2.840.10008.1.1"
pytestmark = pytest.mark.filterwarnings("ignore:.*VR UI:UserWarning")  # the malicious UIDs, on purpose


@pytest.fixture
def service(tmp_path, adapter, store):  # noqa: F811
    service = make_service(tmp_path, adapter, store).start()
    yield service
    service.stop()


def test_c_echo_answers(service):
    assoc = associate(service.port, [VERIFICATION], [ExplicitVRLittleEndian])
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == 0
    assoc.release()


def test_uncompressed_and_compressed_images_are_stored_and_screened(service, store):
    study = generate_uid()
    plain = make_dataset(study, seed=1)
    rle = make_dataset(study, seed=2, sop_class=CR_IMAGE)
    rle.compress(RLELossless)
    jpegls = make_dataset(study, seed=3)
    jpegls.compress(JPEGLSLossless)
    assert c_store(service.port, [plain, rle, jpegls]) == [0, 0, 0]
    assert service.wait_idle(60)

    folder = service.inbox.root / study
    for sent in (plain, rle, jpegls):
        path = folder / f"{sent.SOPInstanceUID}.dcm"
        received = pydicom.dcmread(path)
        assert received.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID  # kept as sent
        assert received.PixelData == sent.PixelData
        result = store.get_result(path, service._adapter.model_hash)
        assert result is not None and result.ok, result and result.error
        assert 0.0 <= result.probability <= 1.0
    assert not list(folder.glob(".incoming-*"))  # no partial files left behind
    assert len(store.study_results(folder, service._adapter.model_hash)) == 3


def test_calling_ae_outside_the_allow_list_is_refused(tmp_path, adapter, store, caplog):  # noqa: F811
    service = make_service(tmp_path, adapter, store, allow_calling=["MODALITY"]).start()
    try:
        refused = associate(service.port, [DX_FOR_PRESENTATION], [ExplicitVRLittleEndian], calling="INTRUDER")
        assert refused.is_rejected
        assert wait_for(lambda: "INTRUDER" in caplog.text and "not in the allow-list" in caplog.text, timeout=5)
        allowed = associate(service.port, [DX_FOR_PRESENTATION], [ExplicitVRLittleEndian], calling="MODALITY")
        assert allowed.is_established
        allowed.release()
        any_called = associate(service.port, [VERIFICATION], [ExplicitVRLittleEndian], called="ANY-SCP")
        assert any_called.is_established  # the called AE title is not checked (storescu's default works)
        any_called.release()
    finally:
        service.stop()
    assert not service.inbox.studies()


def test_oversize_file_is_refused_with_out_of_resources(tmp_path, adapter, store):  # noqa: F811
    service = make_service(tmp_path, adapter, store, max_file_bytes=20_000).start()
    try:
        small = make_dataset(rows=32, cols=32)  # ~2 kB of pixels
        large = make_dataset(rows=128, cols=128)  # ~32 kB of pixels
        assert c_store(service.port, [small, large]) == [0, 0xA700]
    finally:
        service.stop()
    names = {p.name for p in service.inbox.files()}
    assert names == {f"{small.SOPInstanceUID}.dcm"}


def test_huge_file_is_cut_off_while_it_streams(tmp_path, adapter, store):  # noqa: F811
    from core.pacs.listener import STREAM_SLACK_BYTES

    service = make_service(tmp_path, adapter, store, max_file_bytes=20_000).start()
    try:
        huge = make_dataset(rows=1024, cols=1024)  # 2 MiB: past the limit plus the slack
        assert len(huge.PixelData) > 20_000 + STREAM_SLACK_BYTES
        assoc = associate(service.port, [DX_FOR_PRESENTATION], [ExplicitVRLittleEndian])
        try:
            status = assoc.send_c_store(huge)
        except Exception:  # the abort may surface as an error in the sender
            status = None
        assert not status or "Status" not in status  # no success: the association was aborted
        assert wait_for(lambda: not assoc.is_established, timeout=10)
        # the node keeps serving
        assert c_store(service.port, [make_dataset(rows=16, cols=16)]) == [0]
    finally:
        service.stop()
    assert len(service.inbox.files()) == 1


def test_nearly_full_disk_is_refused(tmp_path, adapter, store):  # noqa: F811
    service = make_service(tmp_path, adapter, store, min_free_bytes=1 << 60).start()
    try:
        assert c_store(service.port, [make_dataset()]) == [0xA700]
    finally:
        service.stop()
    assert not service.inbox.files()


@pytest.mark.parametrize("study_uid", ["../../etc", "1.2.3/../../x", "1.2..3", "1.2.3" + ".4" * 40, "1.2.a"])
def test_malicious_or_invalid_study_uid_never_becomes_a_path(service, tmp_path, study_uid):
    ds = make_dataset()
    ds.StudyInstanceUID = study_uid
    assert c_store(service.port, [ds]) == [0xC000]
    assert not service.inbox.files()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inbox", "results.sqlite3",
                                                          "results.sqlite3-shm", "results.sqlite3-wal"]


@pytest.mark.parametrize("sop_uid", ["..", "1.2.3/../../evil", "1.2.3.4.x"])
def test_malicious_sop_uid_is_refused(service, tmp_path, sop_uid):
    ds = make_dataset()
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    assert c_store(service.port, [ds]) == [0xC000]
    assert not service.inbox.files()
    assert not list(tmp_path.rglob("*evil*")) and not list(service.inbox.root.rglob("*.dcm"))


def test_unscreened_files_are_screened_at_the_next_start(tmp_path, adapter, store):  # noqa: F811
    from core.pacs.inbox import Inbox

    ds = make_dataset()
    inbox = Inbox(tmp_path / "inbox", min_free_bytes=0)
    import io

    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    stored = inbox.write(ds.StudyInstanceUID, ds.SOPInstanceUID, [buffer.getvalue()])  # as if a crash followed
    partial = stored.path.parent / ".incoming-x.part"  # a transfer cut off by the crash
    partial.write_bytes(b"half a file")
    service = make_service(tmp_path, adapter, store).start()
    try:
        assert service.wait_idle(60)
    finally:
        service.stop()
    assert store.get_result(stored.path, adapter.model_hash) is not None
    assert not partial.exists()


def test_a_burst_is_screened_in_batches_in_order(tmp_path, adapter, store, monkeypatch):  # noqa: F811
    batches = []
    original = adapter.screen_files

    def recording(paths):
        batches.append(list(paths))
        return original(paths)

    monkeypatch.setattr(adapter, "screen_files", recording)
    service = make_service(tmp_path, adapter, store)
    study = generate_uid()
    datasets = [make_dataset(study, seed=i) for i in range(5)]
    for ds in datasets:  # already waiting when the node starts: one batch
        write_dataset(ds, service.inbox.root / study / f"{ds.SOPInstanceUID}.dcm")
    service.start()
    try:
        assert service.wait_idle(60)
    finally:
        service.stop()
    assert len(batches) == 1 and len(batches[0]) == 5
    for path in batches[0]:
        assert store.get_result(path, adapter.model_hash).path == str(path.resolve())


def test_stop_finishes_screening_what_was_received(tmp_path, adapter, store):  # noqa: F811
    service = make_service(tmp_path, adapter, store).start()
    datasets = [make_dataset(seed=30 + i) for i in range(4)]
    try:
        assert c_store(service.port, datasets) == [0, 0, 0, 0]
    finally:
        service.stop()  # no wait_idle: stop itself must drain the queue
    files = service.inbox.files()
    assert len(files) == 4
    assert all(store.get_result(path, adapter.model_hash) is not None for path in files)
