"""The PACS building blocks on their own: identifiers, inbox paths, outbox backoff, result objects."""
from __future__ import annotations

import time

import numpy as np
import pytest

from core.pacs.inbox import Inbox, InboxRefusal
from core.pacs.nodes import InvalidIdentifier, Node, check_ae_title, check_uid, parse_node
from core.pacs.outbox import Outbox
from core.pacs.results_dicom import build_capture, build_sr, read_source, read_sr
from core.screening.results import ScreenResult
from pacs_helpers import make_dataset, write_dataset


@pytest.mark.parametrize("uid", ["1.2.840.10008", "2.25.123456789", "1.02.3"])
def test_valid_uids_pass(uid):
    assert check_uid(uid) == uid


@pytest.mark.parametrize("uid", ["", "..", ".1.2", "1.2.", "1..2", "1.2/3", "1.2\\3", "/etc/passwd", "1.2.3x",
                                 "1" * 65, "1.2\x00/x", "1.2 .3"])
def test_invalid_uids_are_refused_with_a_reason(uid):
    with pytest.raises(InvalidIdentifier, match="UID"):
        check_uid(uid)


def test_inbox_paths_stay_inside(tmp_path):
    inbox = Inbox(tmp_path / "in", min_free_bytes=0)
    path = inbox.path_for("1.2.3", "1.2.3.4")
    assert path == inbox.root / "1.2.3" / "1.2.3.4.dcm"
    with pytest.raises(InvalidIdentifier):
        inbox.path_for("1.2.3", "../../x")
    stored = inbox.write("1.2.3", "1.2.3.4", [b"abc", b"def"])
    assert stored.path.read_bytes() == b"abcdef"
    assert inbox.studies() == [inbox.root / "1.2.3"] and inbox.files() == [stored.path]


def test_inbox_refusals_say_why(tmp_path):
    inbox = Inbox(tmp_path, max_file_bytes=100, min_free_bytes=0)
    with pytest.raises(InboxRefusal, match="above the inbox limit"):
        inbox.check_room(101)
    with pytest.raises(InboxRefusal, match="disk nearly full"):
        Inbox(tmp_path, min_free_bytes=1 << 60).check_room(1)


@pytest.mark.parametrize("text, node", [("ORTHANC@127.0.0.1:4242", Node("ORTHANC", "127.0.0.1", 4242)),
                                        ("PACS@[::1]:104", Node("PACS", "::1", 104))])
def test_nodes_parse(text, node):
    assert parse_node(text) == node


@pytest.mark.parametrize("text", ["ORTHANC", "@127.0.0.1:4242", "A@127.0.0.1", "A@127.0.0.1:0", "A@h:99999",
                                  "WAY_TOO_LONG_AE_TITLE@h:1", "A\\B@h:1"])
def test_bad_nodes_are_refused(text):
    with pytest.raises(InvalidIdentifier):
        parse_node(text)


def test_ae_titles():
    assert check_ae_title(" PACS ") == "PACS"
    with pytest.raises(InvalidIdentifier):
        check_ae_title("")


def test_outbox_persists_dedupes_and_backs_off(tmp_path):
    node = Node("PACS", "127.0.0.1", 104)
    ds = make_dataset()
    outbox = Outbox(tmp_path, base_delay=10, max_delay=25)
    assert outbox.add(node, ds, key="k1") is True
    assert outbox.add(node, ds, key="k1") is False  # same result, same node: once
    [item] = outbox.due()
    assert item.file.is_file()
    assert outbox.mark_failed(item, "down") == 10
    assert outbox.due() == []
    assert 9 < outbox.next_due_in() <= 10
    outbox.close()

    reopened = Outbox(tmp_path, base_delay=10, max_delay=25)  # a restart
    [item] = reopened.pending()
    assert (item.attempts, item.last_error) == (1, "down")
    assert reopened.mark_failed(item, "down") == 20
    item.attempts = 2
    assert reopened.mark_failed(item, "down") == 25  # capped
    reopened.retry_all_now()
    [item] = reopened.due(now=time.time())
    reopened.mark_sent(item)
    assert reopened.pending_count() == 0 and reopened.sent_count() == 1 and not item.file.exists()


def test_sr_and_capture_carry_the_result(tmp_path):
    source_path = write_dataset(make_dataset(rows=80, cols=96), tmp_path / "src.dcm")
    source = read_source(source_path)
    result = ScreenResult(path=str(source_path), probability=0.8125, threshold=0.4, model="tiny", model_version="3",
                          model_hash="ab" * 32, cam=np.ones((4, 4), np.float32))
    result.scope = "lateral view"  # the scope check's verdict, when the engine has one
    values = read_sr(build_sr(source, result))
    assert (values.call, values.probability, values.threshold) == ("OUT_OF_SCOPE", 0.8125, 0.4)
    assert (values.model, values.model_version, values.scope) == ("tiny", "3", "lateral view")
    assert values.source_sop_uid == source.SOPInstanceUID

    capture = build_capture(source, source_path, result)
    pixels = capture.pixel_array
    assert pixels.shape == (80, 96, 3) and capture.Modality == "OT"
    assert capture.StudyInstanceUID == source.StudyInstanceUID
    assert capture.SeriesInstanceUID != source.SeriesInstanceUID and capture.SOPInstanceUID != source.SOPInstanceUID
    assert list(capture.ImageType) == ["DERIVED", "SECONDARY"]
    assert pixels[..., 0].mean() > pixels[..., 2].mean()  # an all-hot map paints the image red


def test_unscreenable_image_still_gets_an_sr_saying_why(tmp_path):
    source_path = write_dataset(make_dataset(), tmp_path / "src.dcm")
    result = ScreenResult(path=str(source_path), probability=None, threshold=0.5, model="tiny",
                          error="cannot decode JPEG 2000")
    values = read_sr(build_sr(read_source(source_path), result))
    assert values.call is None and values.probability is None and values.error == "cannot decode JPEG 2000"


def test_source_without_patient_and_study_attributes_still_gets_results(tmp_path):
    from core.pacs.results_dicom import result_objects

    ds = make_dataset()
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                    "AccessionNumber", "StudyID", "ReferringPhysicianName", "InstanceNumber", "PatientOrientation"):
        delattr(ds, keyword)
    path = write_dataset(ds, tmp_path / "bare.dcm")
    result = ScreenResult(path=str(path), probability=0.1, threshold=0.5, model="tiny", model_hash="cd" * 32)
    objects = result_objects(path, result)
    assert [o.kind for o in objects] == ["SR", "SC"]
    assert all(o.dataset.StudyInstanceUID == ds.StudyInstanceUID for o in objects)
    assert read_sr(objects[0].dataset).call == "NORMAL"
