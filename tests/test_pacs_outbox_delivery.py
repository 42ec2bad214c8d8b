"""Issue 19 item 10: results sent from the GUI go through the persistent outbox; a
destination that refuses them is given up after MAX_REFUSALS tries (one that is down is
retried for ever); the Inbox shows, per study, what was sent, waits or was refused."""
from __future__ import annotations

import io
import socket

import pytest
from pydicom.uid import generate_uid
from PySide6.QtCore import QSettings

from core.pacs.delivery import DeliveryWorker
from core.pacs.inbox import Inbox
from core.pacs.nodes import parse_node
from core.pacs.outbox import MAX_REFUSALS, Outbox
from desktop.inbox_panel import COLUMNS, InboxPanel
from desktop.pacs_settings import PacsSettings
from pacs_fixtures import tiny_model_entry  # noqa: F401
from pacs_helpers import make_dataset


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def destination():
    """A storage SCP whose answer the test sets: 0x0000 stores, 0xA700 refuses."""
    from pynetdicom import AE, AllStoragePresentationContexts, evt

    answer = {"status": 0xA700, "stored": 0}

    def on_store(event):
        if answer["status"] == 0:
            answer["stored"] += 1
        return answer["status"]

    ae = AE(ae_title="DEST")
    ae.supported_contexts = AllStoragePresentationContexts
    port = free_port()
    server = ae.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    yield parse_node(f"DEST@127.0.0.1:{port}"), answer
    server.shutdown()


def test_a_refusing_destination_is_given_up_after_the_limit_and_a_down_one_never(tmp_path, destination):
    node, answer = destination
    outbox = Outbox(tmp_path / "state", base_delay=0.0)
    study = generate_uid()
    assert outbox.add(node, make_dataset(study, seed=1), key="a")
    delivery = DeliveryWorker(outbox, "PNEUMOSCAN")
    for _ in range(MAX_REFUSALS + 2):
        delivery.deliver_due()
    assert outbox.pending_count() == 0 and len(outbox.refused()) == 1
    state = outbox.study_deliveries()[study]
    assert state.refused == 1 and state.text.startswith("REFUSED 1:")
    # The reader sends it again, and the destination now stores it.
    answer["status"] = 0
    assert outbox.retry_study(study) == 1
    assert delivery.deliver_due() == 1 and answer["stored"] == 1
    assert outbox.study_deliveries()[study].text == "sent 1"

    down = parse_node(f"DOWN@127.0.0.1:{free_port()}")  # nothing listens there
    assert outbox.add(down, make_dataset(generate_uid(), seed=2), key="b")
    for _ in range(MAX_REFUSALS + 2):
        delivery.deliver_due()
    assert outbox.pending_count() == 1 and outbox.refused() == []  # still waiting, never given up
    outbox.close()


def test_an_outbox_from_before_the_refusal_limit_opens_and_keeps_its_items(tmp_path):
    import sqlite3

    state = tmp_path / "state"
    state.mkdir()
    with sqlite3.connect(state / "outbox.sqlite3") as conn:  # the first release's table
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, "
                     "destination TEXT NOT NULL, file TEXT NOT NULL, description TEXT NOT NULL, created REAL "
                     "NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt REAL NOT NULL, last_error TEXT, "
                     "sent REAL, UNIQUE (key, destination))")
        conn.execute("INSERT INTO items (key, destination, file, description, created, next_attempt) "
                     "VALUES ('k', 'DEST@127.0.0.1:104', 'x.dcm', '', 0, 0)")
    outbox = Outbox(state)
    assert outbox.pending_count() == 1 and outbox.refused() == []
    outbox.close()


def test_outboxes_opened_at_once_on_a_new_folder_all_open(tmp_path):
    """CI fault: the Inbox's reader and the sender opened one outbox together; both saw a column
    missing and both added it ("duplicate column name: study")."""
    import threading

    for attempt in range(20):
        state = tmp_path / f"state{attempt}"
        start, errors, opened = threading.Barrier(4), [], []

        def open_outbox():
            start.wait()
            try:
                opened.append(Outbox(state))
            except Exception as error:  # noqa: BLE001 - the fault under test
                errors.append(error)

        threads = [threading.Thread(target=open_outbox) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for outbox in opened:
            outbox.close()
        assert errors == [], errors


@pytest.fixture
def panel(qtbot, tmp_path, monkeypatch, tiny_model_entry):  # noqa: F811
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    settings = PacsSettings(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    settings.inbox = str(tmp_path / "inbox")
    settings.model = str(tiny_model_entry.keras_path)
    panel = InboxPanel(settings, poll_ms=200)
    qtbot.addWidget(panel)
    yield panel
    panel.shutdown()


def receive(inbox_dir: str, study: str, seed: int, patient: str = "Doe^Jane"):
    ds = make_dataset(study, seed=seed, patient=patient)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return Inbox(inbox_dir, min_free_bytes=0).write(study, ds.SOPInstanceUID, [buffer.getvalue()]).path


def cell(panel, row: int, column: str):
    return panel.model.data(panel.model.index(row, COLUMNS.index(column)))


def test_send_from_the_inbox_goes_through_the_outbox_and_shows_what_became_of_it(qtbot, panel, destination):
    node, answer = destination
    study = generate_uid()
    receive(panel.settings.inbox, study, 1)
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1, timeout=10_000)
    # Four patients called Doe^Jane are told apart by their ID; the AI result is never clipped.
    assert cell(panel, 0, "Patient ID") and cell(panel, 0, "Patient") == "Doe Jane"
    panel.show()
    qtbot.wait(50)
    ai_text = str(cell(panel, 0, "AI result"))
    column = COLUMNS.index("AI result")
    assert ai_text and panel.table.columnWidth(column) >= panel.table.fontMetrics().horizontalAdvance(ai_text)

    down = f"DOWN@127.0.0.1:{free_port()}"
    with qtbot.waitSignal(panel.message, timeout=120_000,
                          check_params_cb=lambda text: not text.startswith("Sending results")) as msg:
        panel.send_results(0, destination=down)
    assert "wait in the outbox" in msg.args[0], msg.args[0]
    outbox = Outbox(panel.settings.inbox + "/.pneumoscan")
    assert outbox.pending_count() == 2  # SR + capture kept, not lost
    outbox.close()
    qtbot.waitUntil(lambda: (cell(panel, 0, "Sent") or "").startswith("waiting 2"), timeout=10_000)

    with qtbot.waitSignal(panel.message, timeout=120_000,
                          check_params_cb=lambda text: not text.startswith("Sending results")) as msg:
        panel.send_results(0, destination=str(node))  # the destination answers, and refuses
    assert "refused" in msg.args[0], msg.args[0]
    assert "0xA700" in (cell(panel, 0, "Sent") or "") or "A700" in msg.args[0].upper()

    # The destination stores again: with no listener running, the Inbox itself delivers what
    # waits in the outbox once it is due (backoff: 5 s after the refusal).
    answer["status"] = 0
    qtbot.waitUntil(lambda: "sent 2" in (cell(panel, 0, "Sent") or ""), timeout=60_000)
    assert answer["stored"] == 2
    with qtbot.waitSignal(panel.message, timeout=120_000,
                          check_params_cb=lambda text: not text.startswith("Sending results")) as msg:
        panel.send_results(0, destination=str(node))
    assert msg.args[0].startswith("Sent 2 result object(s)"), msg.args[0]
    qtbot.waitUntil(lambda: "sent 2" in (cell(panel, 0, "Sent") or ""), timeout=10_000)
