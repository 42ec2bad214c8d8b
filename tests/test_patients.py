"""One definition of a patient (core.imaging.patients), as the reading session uses it."""
from __future__ import annotations

from core.imaging.patients import patient_id, shown_patient
from core.reading.session import ReadingSession
from core.screening.results import ScreenResult


def result(path, p, meta=None, scope="", error=None):
    return ScreenResult(path=str(path), probability=None if error else p, threshold=0.5, model="m",
                        model_version="1", model_hash="h", meta=meta or {}, scope=scope, error=error)


def test_kermany_sequences_of_any_length_are_one_patient():
    # Reported: IM-0033-0001-0001.jpeg and IM-0033-0001.jpeg got different patients.
    assert patient_id("x/IM-0033-0001-0001.jpeg") == patient_id("y/IM-0033-0001.jpeg") == "IM-0033"
    assert patient_id("NORMAL2-IM-0381-0001-0002.jpeg") == "NORMAL2-IM-0381"


def test_dicom_issuer_and_labels_csv_patient_come_before_the_file_name():
    assert patient_id("a.dcm", dicom_patient="HOSP/12") == "dicom:HOSP/12"
    assert patient_id("person3_virus_1.jpeg", labelled="p-77") == "label:p-77"
    assert shown_patient("file:/study/adults/a1", folder=None) == "a1"


def test_ten_adult_films_in_one_folder_are_ten_patients(tmp_path):
    # Reported: every image of `adults/` became patient "adults" with one study call.
    folder = tmp_path.resolve()
    files = [str(folder / "adults" / f"adult_{i:02d}.png") for i in range(10)]
    session = ReadingSession(threshold=0.5)
    session.open_study(folder, files, {})
    session.add_results([result(f, 0.9, scope="patient age 40 y" if i < 6 else "") for i, f in enumerate(files)])
    patients = {session.row(f).patient for f in files}
    assert len(patients) == 10 and "adults" not in patients
    assert session.row(files[0]).patient == "adults/adult_00"


def test_same_kermany_patient_in_one_study_and_calls_leave_out_of_scope_and_errors(tmp_path):
    folder = tmp_path.resolve()
    a, b, c = (str(folder / name) for name in ("IM-0033-0001.jpeg", "IM-0033-0001-0001.jpeg", "IM-0033-0002.jpeg"))
    session = ReadingSession(threshold=0.5)
    session.open_study(folder, [a, b, c], {})
    session.add_results([result(a, 0.99, scope="lateral view"), result(b, 0.2), result(c, None, error="broken")])
    (group,) = session.groups()
    assert group.patient == "IM-0033" and len(group.keys) == 3
    # The out-of-scope 0.99 does not make the study positive; the call says what it left out.
    assert group.call == "NORMAL" and group.probability == 0.2
    assert group.text() == "NORMAL (highest p=0.200; 1 of 3 images; 1 out of scope and 1 with errors left out)"


def test_a_labels_csv_patient_column_groups_the_files(tmp_path):
    from core.reading.study_files import scan_study

    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "labels.csv").write_text("path,label,patient\na.png,NORMAL,P9\nb.png,PNEUMONIA,P9\n")
    study = scan_study(tmp_path)
    session = ReadingSession()
    session.open_study(study.folder, study.files, study.truth, study.patients)
    assert {session.row(k).patient for k in study.files} == {"P9"}


def test_the_window_groups_dicom_films_by_patient_id_with_its_issuer(tmp_path):
    """Two hospitals' patient 12 are two patients; the issuer travels in the result's meta."""
    import numpy as np

    import conftest_loader_helpers as h
    from core.imaging.loader import load_image

    folder = tmp_path.resolve()
    paths = []
    for name, issuer in (("a.dcm", "NORTH"), ("b.dcm", "SOUTH"), ("c.dcm", "NORTH")):
        ds = h.mono2_8bit(np.full((16, 16), 100, np.uint8))
        ds.PatientID, ds.IssuerOfPatientID = "12", issuer
        paths.append(str(h.save(ds, folder / name)))
    session = ReadingSession()
    session.open_study(folder, paths, {})
    session.add_results([result(p, 0.3, meta=load_image(p).meta) for p in paths])
    assert [session.row(p).patient for p in paths] == ["NORTH/12", "SOUTH/12", "NORTH/12"]
