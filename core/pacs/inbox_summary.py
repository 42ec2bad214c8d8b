"""One line per received study (patient name and ID, date, images, AI result), for the Inbox view.

Qt-free so it runs on a worker thread and in tests. Headers are read once per
file (cached by size and mtime), results come from the results store, so a
poll every few seconds stays cheap however large the inbox grows.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pydicom

from core.pacs.inbox import Inbox
from core.screening.results import OUT_OF_SCOPE, POSITIVE


@dataclass(frozen=True)
class StudySummary:
    study_uid: str
    folder: str
    patient: str
    study_date: str  # YYYY-MM-DD, or "" when absent
    images: int
    screened: int
    positives: int
    out_of_scope: int
    errors: int
    received: float  # newest file's mtime (epoch seconds)
    patient_id: str = ""  # PatientID: four identical names can be told apart

    @property
    def ai_result(self) -> str:
        """PNEUMONIA k/n, OUT_OF_SCOPE, NORMAL, or 'screening…' while results are missing."""
        if self.positives:
            text = f"{POSITIVE} {self.positives}/{self.images}"
        elif self.out_of_scope:
            text = f"{OUT_OF_SCOPE} {self.out_of_scope}/{self.images}"
        elif self.screened and self.screened == self.errors:
            text = "not screened (errors)"
        elif self.screened:
            text = "NORMAL"
        else:
            text = ""
        if self.screened < self.images:
            text = f"{text}, screening…" if text else f"screening… ({self.screened}/{self.images})"
        return text


class InboxSummariser:
    def __init__(self, inbox_root, store, model_hash: str | None):
        self.inbox = Inbox(inbox_root, min_free_bytes=0)
        self.store = store
        self.model_hash = model_hash
        self._headers: dict[str, tuple[tuple[int, int], tuple[str, str, str]]] = {}

    def summaries(self) -> list[StudySummary]:
        found = []
        for folder in self.inbox.studies():
            files = self.inbox.files(folder)
            if files:
                found.append(self._summary(folder, files))
        return found

    def _summary(self, folder: Path, files: list[Path]) -> StudySummary:
        patient, patient_id, date = self._header(files[0])
        results = self.store.study_results(folder, self.model_hash) if self.model_hash else []
        results = [r for r in results if Path(r.path).parent == folder]
        predictions = [r.prediction for r in results]
        newest = max((_mtime(p) for p in files), default=0.0)
        return StudySummary(
            study_uid=folder.name, folder=str(folder), patient=patient, study_date=date, images=len(files),
            screened=len(results), positives=predictions.count(POSITIVE),
            out_of_scope=predictions.count(OUT_OF_SCOPE), errors=sum(not r.ok for r in results), received=newest,
            patient_id=patient_id)

    def _header(self, path: Path) -> tuple[str, str, str]:
        """(patient name, else ID; patient ID; study date) of a study's first file."""
        try:
            st = os.stat(path)
        except OSError:
            return "", "", ""
        key = (st.st_size, st.st_mtime_ns)
        cached = self._headers.get(str(path))
        if cached and cached[0] == key:
            return cached[1]
        try:
            ds = pydicom.dcmread(str(path), stop_before_pixels=True,
                                 specific_tags=["PatientName", "PatientID", "StudyDate"])
            name = str(ds.get("PatientName", "") or "").replace("^", " ").strip()
            patient_id = str(ds.get("PatientID", "") or "")
            patient = name or patient_id
            raw = str(ds.get("StudyDate", "") or "")
            date = f"{raw[:4]}-{raw[4:6]}-{raw[6:8]}" if len(raw) == 8 and raw.isdigit() else raw
        except Exception:  # a damaged header still lists the study
            patient, patient_id, date = "", "", ""
        self._headers[str(path)] = (key, (patient, patient_id, date))
        return patient, patient_id, date


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
