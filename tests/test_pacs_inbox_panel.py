"""The Inbox dock (pytest-qt): live rows, read / unread, export, and the in-app listener."""
from __future__ import annotations

import io

import pytest
from PySide6.QtCore import QSettings, Qt
from pydicom.uid import generate_uid

from core.pacs.inbox import Inbox
from core.screening.results import ScreenResult
from core.reading.store import ResultStore
from desktop.inbox_panel import COLUMNS, InboxPanel
from desktop.pacs_settings import PacsSettings, PacsSettingsDialog
from pacs_fixtures import NODE_AET, c_store, tiny_model_entry  # noqa: F401
from pacs_helpers import make_dataset

HASH = "f" * 64


@pytest.fixture
def settings(home, tmp_path):
    qs = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    s = PacsSettings(qs)
    s.inbox = str(tmp_path / "inbox")
    return s


def receive(inbox: Inbox, study: str, seed: int, patient: str = "Doe^Jane"):
    ds = make_dataset(study, seed=seed, patient=patient)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return inbox.write(study, ds.SOPInstanceUID, [buffer.getvalue()]).path


def cell(panel: InboxPanel, row: int, column: str):
    return panel.model.data(panel.model.index(row, COLUMNS.index(column)))


@pytest.fixture
def panel(qtbot, settings):
    panel = InboxPanel(settings, poll_ms=100)
    qtbot.addWidget(panel)
    yield panel
    panel.shutdown()


def test_rows_appear_and_update_live(qtbot, settings, panel, home):
    inbox = Inbox(settings.inbox, min_free_bytes=0)
    study = generate_uid()
    first = receive(inbox, study, 1)
    panel.set_model_hash(HASH)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1, timeout=5000)
    assert cell(panel, 0, "Patient") == "Doe Jane"
    assert cell(panel, 0, "Study date") == "2026-01-01"
    assert cell(panel, 0, "Images") == 1
    assert cell(panel, 0, "AI result").startswith("screening")
    assert cell(panel, 0, "Status") == "Unread"

    with ResultStore() as store:  # the listener screens it: the row follows without a reset
        store.put_result(first.parent, ScreenResult(path=str(first), probability=0.9, threshold=0.5, model="m",
                                                    model_hash=HASH))
    qtbot.waitUntil(lambda: cell(panel, 0, "AI result") == "PNEUMONIA 1/1", timeout=5000)

    receive(inbox, study, 2)
    other = generate_uid()
    receive(inbox, other, 3, patient="Roe^Rick")
    qtbot.waitUntil(lambda: panel.model.rowCount() == 2 and cell(panel, 0, "Images") == 2, timeout=5000)
    assert cell(panel, 0, "AI result") == "PNEUMONIA 1/2, screening…"
    assert {cell(panel, r, "Patient") for r in range(2)} == {"Doe Jane", "Roe Rick"}


def test_open_marks_read_and_new_images_make_it_unread(qtbot, settings, panel):
    inbox = Inbox(settings.inbox, min_free_bytes=0)
    study = generate_uid()
    receive(inbox, study, 1)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1, timeout=5000)
    with qtbot.waitSignal(panel.studyOpened) as opened:
        panel.open_study(0)
    assert opened.args == [str(inbox.root / study)]
    assert cell(panel, 0, "Status") == "Read"
    assert panel.model.data(panel.model.index(0, 0), Qt.ItemDataRole.FontRole) is None
    panel.toggle_read(0)
    assert cell(panel, 0, "Status") == "Unread"
    panel.toggle_read(0)
    receive(inbox, study, 2)
    qtbot.waitUntil(lambda: cell(panel, 0, "Images") == 2, timeout=5000)
    assert cell(panel, 0, "Status") == "Unread"
    assert PacsSettings(settings._qs).is_unread(study, 2)  # persisted in QSettings


def test_export_dicom_writes_sr_and_capture(qtbot, settings, panel, tmp_path, tiny_model_entry):  # noqa: F811
    settings.model = str(tiny_model_entry.keras_path)
    inbox = Inbox(settings.inbox, min_free_bytes=0)
    receive(inbox, generate_uid(), 1)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1, timeout=5000)
    out = tmp_path / "export"
    with qtbot.waitSignal(panel.message, timeout=60000,
                          check_params_cb=lambda text: text.startswith(("Exported", "Export failed"))) as msg:
        panel.export_dicom(0, str(out))
    assert msg.args[0].startswith("Exported 2"), msg.args[0]
    assert sorted(p.name[:3] for p in out.glob("*/*.dcm")) == ["SC_", "SR_"]


def test_send_without_destination_says_so(qtbot, settings, panel):
    receive(Inbox(settings.inbox, min_free_bytes=0), generate_uid(), 1)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1, timeout=5000)
    with qtbot.waitSignal(panel.message) as msg:
        panel.send_results(0)
    assert "destination" in msg.args[0]


def test_in_app_listener_receives_screens_and_shows_the_study(qtbot, settings, panel, tiny_model_entry):  # noqa: F811
    from orthanc_server import free_port

    settings.model = str(tiny_model_entry.keras_path)
    settings.port = free_port()
    with qtbot.waitSignal(panel.controller.started, timeout=60000) as started:
        panel.toggle_listener()
    port = started.args[0]
    assert panel.listen_button.text() == "Stop listener"
    study = generate_uid()
    assert c_store(port, [make_dataset(study, seed=5)]) == [0]
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1 and cell(panel, 0, "AI result")
                    and not cell(panel, 0, "AI result").startswith("screening"), timeout=30000)
    assert cell(panel, 0, "AI result").split()[0] in ("PNEUMONIA", "NORMAL")
    with qtbot.waitSignal(panel.controller.stopped, timeout=60000):
        panel.toggle_listener()
    assert panel.listen_button.text() == "Start listener"


def test_listener_that_cannot_start_reports_why(qtbot, settings, panel):
    settings.destination = "not a node"
    with qtbot.waitSignal(panel.controller.failed, timeout=10000) as failed:
        panel.toggle_listener()
    assert "AET@HOST:PORT" in failed.args[0]
    assert panel.listen_button.isEnabled()


def test_settings_dialog_refuses_bad_values(qtbot, settings):
    settings.port = 11112
    dialog = PacsSettingsDialog(settings)
    qtbot.addWidget(dialog)
    assert dialog.port.value() == 11112 and dialog.ae_title.text() == "PNEUMOSCAN"
    dialog.ae_title.setText("BAD\\AE")
    assert "AE title" in dialog.validate()
    dialog.ae_title.setText(NODE_AET)
    dialog.destination.setText("ORTHANC@127.0.0.1")
    assert "AET@HOST:PORT" in dialog.validate()
    dialog.destination.setText("ORTHANC@127.0.0.1:4242")
    dialog.allow_calling.setText("MODALITY PACS")
    assert dialog.validate() is None
    dialog.accept()
    assert settings.destination == "ORTHANC@127.0.0.1:4242" and settings.allow_calling == ["MODALITY", "PACS"]
    assert settings.port == 11112 and settings.ae_title == NODE_AET
