"""Issue 19, the reading record in core (no Qt): out-of-scope decisions (item 1), sign-off
and amend (item 3), counts that add up after every kind of action (item 7)."""
from __future__ import annotations

import pytest

from core.reading.cells import CELL_NAMES
from core.reading.decision_labels import decision_labels
from core.reading.records import CONFIRM_OUT_OF_SCOPE, SCREEN_ANYWAY
from core.reading.session import OUT_OF_SCOPE_QUEUE, ReadingSession
from core.reading.store import ResultStore
from core.screening.results import AGREE, DISAGREE, NEGATIVE, OUT_OF_SCOPE, POSITIVE, UNSURE, ScreenResult

SPEC = {  # name: (probability, truth, scope, error)
    "fn.png": (0.2, POSITIVE, "", None), "tp.png": (0.9, POSITIVE, "", None),
    "fp.png": (0.8, NEGATIVE, "", None), "tn.png": (0.1, NEGATIVE, "", None),
    "tn_flagged.png": (0.05, NEGATIVE, "not a chest X-ray", None),
    "tp_flagged.png": (0.95, POSITIVE, "lateral view", None),
    "unknown.png": (0.6, None, "", None), "broken.png": (None, NEGATIVE, "", "cannot decode"),
    "later.png": (None, None, "", None),  # never screened
}


def make_result(path, p, scope="", error=None):
    return ScreenResult(path=str(path), probability=p, threshold=0.5, model="m", model_version="1",
                        model_hash="h", error=error, scope=scope)


@pytest.fixture
def study(tmp_path):
    folder = (tmp_path / "study").resolve()
    folder.mkdir()
    keys, truth, results = {}, {}, []
    for name, (p, label, scope, error) in SPEC.items():
        path = folder / name
        path.write_bytes(name.encode())
        keys[name] = str(path)
        if label:
            truth[str(path)] = label
        if p is not None or error:
            results.append(make_result(path, p, scope, error))
    return folder, keys, truth, results


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "store.sqlite3") as s:
        yield s


def opened(study, store, reader="Dr A"):
    folder, keys, truth, results = study
    session = ReadingSession(store=store, reader=reader, threshold=0.5)
    session.model_label = "m v1"
    session.open_study(folder, list(keys.values()), truth)
    session.add_results(results)
    for r in results:
        store.put_result(folder, r)
    return session


def assert_adds_up(session):
    """Item 7: every file in exactly one place; the matrix, the queues and the totals agree."""
    c = session.counts()
    assert sum(c["places"].values()) == c["total"] == len(SPEC)
    assert c["unscreened"] + c["errors"] + c["out_of_scope"] + c["unlabelled"] + sum(c["cells"].values()) == c["total"]
    for cell in CELL_NAMES:
        assert len(session.queue_keys(cell)) == c["cells"][cell]
    assert len(session.queue_keys(OUT_OF_SCOPE_QUEUE)) == c["out_of_scope"]
    assert session.filter_counts()["out_of_scope"] == c["out_of_scope"]


def test_agree_disagree_unsure_are_refused_on_a_withheld_row_and_say_why(study, store):
    # Reported: "Agree: NORMAL (AI now OUT_OF_SCOPE)" recorded on a call the reader never saw.
    session = opened(study, store)
    _, keys, _, _ = study
    session.open_queue(OUT_OF_SCOPE_QUEUE)
    session.go_to(keys["tn_flagged.png"])
    for kind in (AGREE, DISAGREE, UNSURE):
        problem = session.decide(kind)
        assert problem and "out of scope (not a chest X-ray)" in problem and "Confirm out of scope" in problem
    assert session.row(keys["tn_flagged.png"]).decision is None
    assert store.image_history(keys["tn_flagged.png"]) == []


def test_confirm_out_of_scope_is_its_own_kind_and_never_a_label(study, store):
    session = opened(study, store)
    folder, keys, _, _ = study
    session.go_to(keys["tn_flagged.png"])
    assert session.confirm_out_of_scope() is None
    decision = store.image_decisions([keys["tn_flagged.png"]])[keys["tn_flagged.png"]]
    assert (decision.decision, decision.ai_call, decision.reader_label, decision.reason) == (
        CONFIRM_OUT_OF_SCOPE, OUT_OF_SCOPE, None, "not a chest X-ray")
    assert session.decision_text(session.row(keys["tn_flagged.png"])) == "Confirmed out of scope: not a chest X-ray"
    session.go_to(keys["tp.png"])
    assert "withheld" in session.confirm_out_of_scope()  # only withheld rows can be confirmed
    assert decision_labels(store, folder).labels == []


def test_screen_anyway_then_a_normal_decision_on_the_call_shown(study, store):
    session = opened(study, store)
    folder, keys, _, _ = study
    session.go_to(keys["tp_flagged.png"])
    assert session.screen_anyway() is None
    assert session.current == keys["tp_flagged.png"]  # stays: the reader now decides on the shown call
    assert session.decide(AGREE) is None
    decision = store.image_decisions([keys["tp_flagged.png"]])[keys["tp_flagged.png"]]
    assert (decision.decision, decision.ai_call, decision.reader_label) == (AGREE, POSITIVE, POSITIVE)
    assert [d.decision for d in store.image_history(keys["tp_flagged.png"])] == [SCREEN_ANYWAY, AGREE]
    # Still an out-of-scope image: its decision is not a training label.
    labels = decision_labels(store, folder)
    assert labels.labels == [] and labels.out_of_scope == 1


def test_decisions_stored_on_withheld_rows_before_are_shown_as_such_and_never_labels(study, store):
    # A database from 0.3: "agree" stored on a withheld row with the hidden call as its label.
    session = opened(study, store)
    folder, keys, _, _ = study
    legacy = store.record_decision(folder, keys["tn_flagged.png"], AGREE, ai_call=NEGATIVE, model="m",
                                   model_hash="h", probability=0.05, threshold=0.5, reader="Dr Old")
    store.record_decision(folder, keys["tp.png"], AGREE, ai_call=POSITIVE, model="m", model_hash="h",
                          probability=0.9, threshold=0.5, reader="Dr Old")
    session.set_decisions(store.image_decisions(list(keys.values())))
    row = session.row(keys["tn_flagged.png"])
    assert row.decided_unseen and legacy.reader_label == NEGATIVE
    assert session.decision_text(row) == "Agree: NORMAL (made on a withheld out-of-scope call: not a label)"
    assert not session.is_changed_call(row)  # not "AI call changed since the reader decided"
    labels = decision_labels(store, folder)
    assert labels.labels == [(keys["tp.png"], POSITIVE)] and labels.out_of_scope == 1
    assert session.counts()["out_of_scope_left"] == 2  # still to be confirmed or screened anyway


def test_sign_off_records_what_it_was_signed_with_and_the_study_is_read_only_until_amended(study, store):
    session = opened(study, store)
    folder, keys, truth, results = study
    assert "not screened" in session.sign_off()
    session.add_results([make_result(keys["later.png"], 0.3)])
    questions = session.sign_off_questions()
    assert any("need review are undecided" in q for q in questions)
    assert any("out-of-scope images are neither confirmed" in q for q in questions)
    assert session.sign_off() is None
    signed = store.study_sign_off(folder)
    assert (signed.model, signed.threshold, signed.images) == ("m v1", 0.5, len(SPEC))
    assert signed.counts["needs_review_left"] == session.counts()["needs_review_left"]
    session.go_to(keys["fn.png"])
    for attempt in (lambda: session.decide(DISAGREE), session.confirm_out_of_scope, session.screen_anyway):
        assert "signed off by Dr A" in attempt() and "Amend" in session.read_only_reason
    assert session.undo() is None and "signed off" in session.undo_refusal()
    assert session.amend("") == "say why the study is amended"
    assert session.amend("second look at the lateral") is None
    assert session.decide(DISAGREE) is None
    signoffs, amendments = store.study_record(folder)
    assert len(signoffs) == 1 and amendments[0].reason == "second look at the lateral"
    assert amendments[0].signoff_id == signoffs[0].id and amendments[0].reader == "Dr A"


def test_the_threshold_of_a_signed_off_study_holds_until_it_is_amended(study, store):
    # The calls a reader signed are the calls at the signed threshold: moving it afterwards
    # re-labelled the study under the same "Signed off ... threshold 0.500" line.
    session = opened(study, store)
    _, keys, _, _ = study
    session.add_results([make_result(keys["later.png"], 0.3)])
    assert session.set_threshold(0.4) is None and session.sign_off() is None
    assert "Amend" in session.set_threshold(0.7) and session.threshold == 0.4
    assert session.set_threshold(0.4) is None  # the same value is no change

    # Opened again later (a fresh session at the model's own threshold): the signed one comes back.
    again = opened(study, store)
    assert again.threshold == 0.5
    again.set_signed_off(store.study_sign_off(study[0]))
    assert again.threshold == 0.4 and "Amend" in again.set_threshold(0.5)
    # ... but not for another model's results: those were never signed.
    other = opened(study, store)
    other.model_label = "m v2"
    other.set_signed_off(store.study_sign_off(study[0]))
    assert other.threshold == 0.5
    assert again.amend("recalibrated") is None and again.set_threshold(0.5) is None and again.threshold == 0.5


def test_counts_add_up_after_every_kind_of_action(study, store):
    # Reported: Screen anyway on a true negative took TN 132 -> 133 while "Out of scope" stayed: 407 of 406.
    session = opened(study, store)
    _, keys, _, _ = study
    assert_adds_up(session)
    before = session.counts()
    session.open_queue(OUT_OF_SCOPE_QUEUE)
    session.go_to(keys["tn_flagged.png"])
    session.screen_anyway()
    after = session.counts()
    assert after["cells"]["TN"] == before["cells"]["TN"] + 1 and after["out_of_scope"] == before["out_of_scope"] - 1
    assert_adds_up(session)
    session.go_to(keys["tp_flagged.png"])
    session.confirm_out_of_scope()
    assert_adds_up(session)
    session.open_queue("FN")
    session.decide(DISAGREE)
    assert_adds_up(session)
    for _ in range(3):
        session.undo()
        assert_adds_up(session)
    session.set_threshold(0.15)
    assert_adds_up(session)
    session.add_results([make_result(keys["later.png"], 0.7), make_result(keys["broken.png"], 0.4)])  # rescreen
    assert_adds_up(session)
    assert session.counts()["unscreened"] == 0 and session.counts()["errors"] == 0


def test_my_decisions_source_checks_file_identity(study, store):
    """The wizard's "my decisions" (core.reading.decision_labels): a file changed since the
    decision is not labelled by it; undone and unsure decisions give no label."""
    session = opened(study, store)
    folder, keys, _, _ = study
    for name, kind in (("tp.png", AGREE), ("fp.png", DISAGREE), ("tn.png", UNSURE), ("fn.png", AGREE)):
        session.go_to(keys[name])
        assert session.decide(kind, advance=False) is None
    session.undo()  # fn.png
    (folder / "fp.png").write_bytes(b"other content, same path")
    labels = decision_labels(store, folder)
    assert labels.labels == [(keys["tp.png"], POSITIVE)] and labels.no_label == 1
