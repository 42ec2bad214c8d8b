"""ReadingSession without a display or a model: queues, filters, threshold, undo, decisions."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.screening.results import AGREE, DISAGREE, NEGATIVE, POSITIVE, UNSURE, ScreenResult
from core.reading.cells import FALSE_NEGATIVE, FALSE_POSITIVE, NEEDS_REVIEW, TRUE_POSITIVE
from core.reading.session import (CURSOR, DECISION, FILTER_ALL, FILTER_AI_POSITIVE, FILTER_CHANGED,
                          FILTER_DISAGREEMENTS, FILTER_QUEUE, FILTER_UNSCREENED, ORDER_FILE,
                          ORDER_PROBABILITY, OUT_OF_SCOPE_QUEUE, ReadingSession, decision_text,
                          natural_key)
from core.reading.store import ResultStore

REPO = Path(__file__).resolve().parents[1]


def test_importing_the_session_loads_neither_qt_nor_tensorflow():
    code = ("import sys, core.reading.session; "
            "bad = [m for m in ('PySide6', 'tensorflow', 'keras') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stdout + done.stderr


def result(path, p, error=None, meta=None, scope=""):
    r = ScreenResult(path=str(path), probability=None if error else p, threshold=0.5, model="m",
                     model_version="1", model_hash="h", error=error, meta=meta or {})
    r.scope = scope
    return r


@pytest.fixture
def study(tmp_path):
    """Six files with truth: two false negatives, two false positives, a TP and a TN."""
    folder = tmp_path / "study"
    spec = {"fn_confident.png": (0.05, POSITIVE), "fn_close.png": (0.45, POSITIVE),
            "fp_confident.png": (0.97, NEGATIVE), "fp_close.png": (0.55, NEGATIVE),
            "tp.png": (0.9, POSITIVE), "tn.png": (0.1, NEGATIVE)}
    folder.mkdir()
    files, truth, results = [], {}, []
    for name, (p, label) in spec.items():
        path = (folder / name)
        path.write_bytes(name.encode())
        key = str(path.resolve())
        files.append(key)
        truth[key] = label
        results.append(result(key, p))
    return folder.resolve(), files, truth, results


def key_of(folder, name):
    return str(folder / name)


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "store.sqlite3") as s:
        yield s


def opened(study, store=None, reader="Dr Reader"):
    folder, files, truth, results = study
    session = ReadingSession(store=store, threshold=0.5, reader=reader)
    session.open_study(folder, files, truth)
    session.add_results(results)
    return session


def test_threshold_is_one_source_of_truth_for_calls_cells_and_queues(study):
    session = opened(study)
    folder = study[0]
    assert session.counts()["cells"] == {FALSE_NEGATIVE: 2, FALSE_POSITIVE: 2, TRUE_POSITIVE: 1, "TN": 1}
    session.open_queue(FALSE_NEGATIVE)
    assert session.queue == [key_of(folder, "fn_confident.png"), key_of(folder, "fn_close.png")]
    events = []
    session.subscribe(lambda event, payload: events.append(event))
    session.set_threshold(0.4)  # fn_close (0.45) becomes a true positive
    assert "threshold" in events
    assert session.queue == [key_of(folder, "fn_confident.png")]
    assert session.ai_call(session.row(key_of(folder, "fn_close.png"))) == POSITIVE
    assert session.counts()["cells"][TRUE_POSITIVE] == 2
    with pytest.raises(ValueError):
        session.set_threshold(1.5)


def test_a_queue_is_what_the_table_lists_and_counts_down_as_decisions_are_made(study, store):
    session = opened(study, store)
    session.set_filter(FILTER_AI_POSITIVE)
    first = session.open_queue(NEEDS_REVIEW)
    # The table lists exactly the queue, whatever filter was on before.
    assert session.filter == FILTER_QUEUE and session.visible_keys() == session.queue
    assert first == session.queue[0] and first.endswith("fn_confident.png")
    assert session.queue_text() == "Needs review: 1 of 4 (4 to decide)"
    assert session.counts()["needs_review_left"] == 4
    session.decide(AGREE)
    assert session.current == session.queue[1]
    assert session.queue_text() == "Needs review: 2 of 4 (3 to decide)"
    assert session.counts()["needs_review_left"] == 3
    # Reopening resumes at the first undecided image.
    session.close_queue()
    assert session.filter == FILTER_ALL and session.queue_kind is None
    assert session.open_queue(NEEDS_REVIEW) == session.queue[1]


def test_filters_reset_per_study_and_keep_the_cursor_on_a_listed_image(study):
    session = opened(study)
    session.go_to(key_of(study[0], "tn.png"))
    session.set_filter(FILTER_AI_POSITIVE)
    assert session.current in session.visible_keys()  # tn is not AI positive: the cursor moved
    assert all(session.ai_call(session.row(k)) == POSITIVE for k in session.visible_keys())
    folder, files, truth, results = study
    session.open_study(folder, files, truth)
    assert session.filter == FILTER_ALL and session.current is None and not session.can_undo


def test_unscreened_images_are_counted_and_listed_after_a_partial_run(study):
    folder, files, truth, results = study
    session = ReadingSession(threshold=0.5)
    session.open_study(folder, files, truth)
    session.add_results(results[:2])
    counts = session.counts()
    assert (counts["total"], counts["screened"], counts["unscreened"]) == (6, 2, 4)
    assert session.filter_counts()[FILTER_UNSCREENED] == 4
    assert session.filter_counts()[FILTER_ALL] == 6
    assert sum(counts["cells"].values()) == 2  # the matrix counts only what was screened


def test_decide_undo_and_decisions_follow_the_image_into_any_folder(study, store, tmp_path):
    session = opened(study, store)
    folder = study[0]
    tp = key_of(folder, "fn_close.png")
    session.go_to(tp)
    seen = []
    session.subscribe(lambda event, payload: seen.append((event, payload)))
    assert session.decide(DISAGREE) is None
    assert (DECISION, tp) in seen and (CURSOR, session.current) in seen
    stored = store.image_decisions([tp])[tp]
    assert stored.decision == DISAGREE and stored.reader == "Dr Reader" and stored.ai_call == NEGATIVE
    assert session.row(tp).decision.id == stored.id  # the provisional record was replaced
    # The same image seen from its parent folder: the decision is there.
    assert store.image_decisions([tp])[tp].study == str(folder)
    parent_view = ReadingSession(store=store)
    parent_view.open_study(folder.parent, [tp], {})
    parent_view.set_decisions(store.image_decisions([tp]))
    assert parent_view.row(tp).decision.decision == DISAGREE
    # A changed file is a different image: the old decision no longer applies.
    Path(tp).write_bytes(b"other content, other size")
    assert tp not in store.image_decisions([tp])
    Path(tp).write_bytes(b"fn_close.png")

    assert session.undo() == tp
    assert session.current == tp and session.row(tp).decision is None
    assert store.image_history(tp)[-1].undone
    assert session.undo() is None  # nothing left


def test_decisions_are_shown_against_the_call_they_were_made_on_and_the_current_one(study, store):
    session = opened(study, store)
    fp = key_of(study[0], "fp_close.png")  # p=0.55: PNEUMONIA at 0.5
    session.go_to(fp)
    session.decide(AGREE, advance=False)
    row = session.row(fp)
    assert session.decision_text(row) == "Agree: PNEUMONIA"
    assert session.filter_counts()[FILTER_DISAGREEMENTS] == 0
    session.set_threshold(0.6)  # now NORMAL: a changed call, not a disagreement
    assert session.decision_text(row) == "Agree: PNEUMONIA (AI now NORMAL)"
    assert session.matches(row, FILTER_CHANGED) and not session.matches(row, FILTER_DISAGREEMENTS)
    session.decide(DISAGREE, advance=False)
    assert session.matches(row, FILTER_DISAGREEMENTS)
    assert session.decision_text(row) == "Disagree: AI said NORMAL"
    assert decision_text(None, POSITIVE) == ""


def test_unsure_and_nothing_to_decide_on(study):
    folder, files, truth, results = study
    session = ReadingSession(threshold=0.5)
    session.open_study(folder, files, truth)
    session.go_to(files[0])
    assert "no AI result" in session.decide(UNSURE)  # not screened yet
    session.add_results([result(files[0], None, error="not an image file")])
    assert "no AI result" in session.decide(UNSURE)  # failed file


def test_natural_order_probability_order_and_navigation_stops_at_the_ends(tmp_path):
    folder = tmp_path.resolve()
    names = ["img10.png", "img2.png", "IMG1.png"]
    keys = [str(folder / n) for n in names]
    session = ReadingSession()
    session.open_study(folder, keys, {})
    session.set_order(ORDER_FILE)
    assert [Path(k).name for k in session.visible_keys()] == ["IMG1.png", "img2.png", "img10.png"]
    assert natural_key("a9") < natural_key("a10")
    session.add_results([result(keys[0], 0.2), result(keys[1], 0.9)])
    session.set_order(ORDER_PROBABILITY, descending=True)
    assert [Path(k).name for k in session.visible_keys()] == ["img2.png", "img10.png", "IMG1.png"]
    assert session.next() == session.visible_keys()[0]
    assert session.previous() == session.visible_keys()[0]
    session.go_to(session.visible_keys()[-1])
    assert session.next() == session.visible_keys()[-1] and session.at_end


def test_grouping_by_patient_study_and_view_with_a_study_level_result(tmp_path):
    folder = tmp_path.resolve()
    (folder / "anna").mkdir()
    pa, lat, other = str(folder / "a.dcm"), str(folder / "b.dcm"), str(folder / "anna" / "x.png")
    person = str(folder / "person12_bacteria_3.jpeg")
    session = ReadingSession(threshold=0.5)
    session.open_study(folder, [pa, lat, other, person], {})
    dicom = {"PatientID": "P1", "StudyInstanceUID": "1.2.3"}
    session.add_results([result(lat, 0.7, meta={**dicom, "ViewPosition": "LL"}),
                         result(pa, 0.2, meta={**dicom, "ViewPosition": "PA"}),
                         result(other, 0.1), result(person, 0.3)])
    groups = {g.patient: g for g in session.groups()}
    assert set(groups) == {"P1", "anna/x", "person12"}  # a folder alone never makes a patient
    p1 = groups["P1"]
    assert p1.keys == [pa, lat]  # PA before the lateral
    assert p1.views == ["PA", "LL"] and p1.probability == 0.7 and p1.call == POSITIVE
    assert groups["anna/x"].call == NEGATIVE
    assert session.group_result(pa) is not None and session.group_result(pa).study_uid == "1.2.3"


def test_out_of_scope_rows_have_their_own_queue_and_stay_out_of_the_matrix(study):
    folder, files, truth, results = study
    session = ReadingSession(threshold=0.5)
    session.open_study(folder, files, truth)
    results = list(results)
    results[0] = result(files[0], 0.05, scope="lateral view")
    session.add_results(results)
    assert session.counts()["out_of_scope"] == 1
    assert session.counts()["cells"][FALSE_NEGATIVE] == 1
    assert session.open_queue(OUT_OF_SCOPE_QUEUE) == files[0]
    assert session.queue_text().startswith("Out of scope: 1 of 1")


def test_sign_off_needs_a_reader_and_a_fully_screened_study(study, store):
    folder, files, truth, results = study
    session = ReadingSession(store=store, reader="")
    session.open_study(folder, files, truth)
    assert "reader" in session.sign_off()
    session.reader = "Dr Reader"
    assert "not screened" in session.sign_off()
    session.add_results(results)
    session.model_label = "m v1"
    assert session.sign_off() is None
    assert session.signed_off.reader == "Dr Reader" and store.study_sign_off(folder).images == 6
    assert session.amend("a late finding") is None
    assert session.signed_off is None and store.study_sign_off(folder) is None


def test_screen_anyway_shows_the_call_persists_and_undoes(study, tmp_path):
    from core.screening.results import OUT_OF_SCOPE, SCREEN_ANYWAY

    folder, files, truth, results = study
    results[4] = result(files[4], 0.9, scope="lateral view")  # tp.png, flagged
    results[5] = result(files[5], 0.1, scope="not a chest X-ray")  # tn.png, flagged
    store = ResultStore(tmp_path / "store.db")
    session = ReadingSession(store=store, reader="Dr A")
    session.open_study(folder, files, truth)
    session.add_results(results)
    session.open_queue(OUT_OF_SCOPE_QUEUE)
    assert session.visible_keys() == [files[5], files[4]]  # tn.png, tp.png
    assert [session.row(k).scope for k in session.visible_keys()] == ["not a chest X-ray", "lateral view"]
    flagged = session.row(files[4])
    assert session.ai_call(flagged) == OUT_OF_SCOPE and session.cell(flagged) is None
    session.go_to(files[0])
    assert session.screen_anyway() == "this image is within the model's scope"
    session.go_to(files[4])
    assert session.screen_anyway() is None
    assert session.ai_call(flagged) == POSITIVE
    assert session.call_text(flagged) == "PNEUMONIA (screened anyway: lateral view)"
    assert session.cell(flagged) == TRUE_POSITIVE
    assert session.row(files[4]).decision is None  # not a reader decision
    assert session.screen_anyway() == "this image is already screened anyway"

    # Stored with who, the reason and the call; not an agree/disagree; reader decisions unaffected.
    stored = store.image_overrides([files[4]])[files[4]]
    assert (stored.decision, stored.reader, stored.reason, stored.ai_call, stored.reader_label) == (
        SCREEN_ANYWAY, "Dr A", "lateral view", POSITIVE, None)
    assert files[4] not in store.image_decisions([files[4]])

    # Reopening the study: the override comes back from the store.
    reopened = ReadingSession(store=store)
    reopened.open_study(folder, files, truth)
    reopened.add_results(results)
    reopened.set_overrides(store.image_overrides(files))
    assert reopened.call_text(reopened.row(files[4])) == "PNEUMONIA (screened anyway: lateral view)"
    assert reopened.ai_call(reopened.row(files[5])) == OUT_OF_SCOPE

    # Undo: back to OUT_OF_SCOPE, in the store too.
    assert session.undo() == files[4]
    assert session.ai_call(flagged) == OUT_OF_SCOPE and session.call_text(flagged) == OUT_OF_SCOPE
    assert store.image_overrides([files[4]]) == {}
    history = store.image_history(files[4])
    assert [(d.decision, d.undone) for d in history] == [(SCREEN_ANYWAY, True)]
