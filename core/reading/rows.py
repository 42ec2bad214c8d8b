"""The rows of a study (one per image, screened or not), their patients and order.

A row's patient comes from core.imaging.patients (DICOM PatientID with issuer, a
labels.csv `patient`, the Kermany naming, else the file itself; never a folder name).
`RowTable` keeps the rows, their order and the patient studies (`StudyGroup`); the
session re-labels them at its threshold.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from core.imaging.patients import dicom_patient_of, patient_id, shown_patient
from core.reading.records import DECISIONS
from core.screening.results import classify

ORDER_GROUPED = "grouped"  # patient, study, view, then file name (natural)
ORDER_FILE = "file"
ORDER_PROBABILITY = "probability"
ORDERS = (ORDER_GROUPED, ORDER_FILE, ORDER_PROBABILITY)
_VIEW_RANK = {"PA": 0, "AP": 1, "LL": 2, "RL": 2, "LATERAL": 2, "LAT": 2}


def natural_key(text: str) -> list:
    """`img2` before `img10`: digit runs compare as numbers, the rest case-blind."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
            for part in re.split(r"(\d+)", str(text)) if part]


def group_of(key: str, folder: Path | None, meta: dict | None, labelled: str | None = None) -> tuple[str, str, str]:
    """(patient, study, view) of one image, as the reader sees them (no local paths)."""
    meta = meta or {}
    view = str(meta.get("ViewPosition") or "").strip().upper()
    # dicom_patient "" reads no header: this runs on the GUI thread; results carry the tags.
    patient = shown_patient(patient_id(key, dicom_patient=dicom_patient_of(meta), labelled=labelled), folder)
    study = str(meta.get("StudyInstanceUID") or "").strip() or patient
    return patient, study, view


@dataclass
class Row:
    """One file of the study; `result` is None until it is screened."""
    key: str  # resolved path
    file: str  # path relative to the study folder (shown; never a full path in reports)
    truth: str | None = None
    result: object = None  # core.screening.results.ScreenResult
    decision: object = None  # core.reading.records.Decision (newest, not undone) or a provisional one
    override: object = None  # the SCREEN_ANYWAY decision (newest, not undone) of an out-of-scope image
    patient: str = ""
    study_uid: str = ""
    view: str = ""
    labelled_patient: str | None = None  # labels.csv `patient`

    @property
    def screened(self) -> bool:
        return self.result is not None

    @property
    def error(self) -> str | None:
        return None if self.result is None else self.result.error

    @property
    def probability(self) -> float | None:
        if self.result is None or self.result.error:
            return None
        return self.result.probability

    @property
    def scope(self) -> str:
        """Why the image is outside the model's scope ("" = within it, or no result)."""
        if self.result is None or self.result.error:
            return ""
        return self.result.scope or ""

    @property
    def withheld(self) -> bool:
        """Out of scope and not screened anyway: no NORMAL/PNEUMONIA call is shown."""
        return bool(self.scope) and self.override is None

    @property
    def decided_unseen(self) -> bool:
        """An agree/disagree/unsure stored while the call was withheld (before 0.4 refused it):
        made on a call the reader was not shown, so it is never a label."""
        return self.withheld and self.decision is not None and self.decision.decision in DECISIONS

    @property
    def group(self) -> tuple[str, str]:
        return self.patient, self.study_uid


@dataclass
class StudyGroup:
    """One patient's study: its images and the study-level result (in-scope images only)."""
    patient: str
    study_uid: str
    keys: list[str] = field(default_factory=list)
    probability: float | None = None  # the highest in-scope image probability
    call: str | None = None  # PNEUMONIA when any in-scope image is positive at the threshold
    views: list[str] = field(default_factory=list)
    used: int = 0  # images the call is made on
    out_of_scope: int = 0  # left out of the call
    errors: int = 0  # left out of the call

    def text(self) -> str:
        """'PNEUMONIA (highest p=0.912; 2 of 3 images; 1 out of scope left out)'."""
        if self.call is None:
            left = self._left_out()
            return f"no call ({left})" if left else "-"
        images = f"{self.used} of {len(self.keys)} images" if self.used != len(self.keys) else \
            f"{self.used} image" + ("s" if self.used != 1 else "")
        views = f", {'/'.join(self.views)}" if self.views else ""
        left = self._left_out()
        return f"{self.call} (highest p={self.probability:.3f}; {images}{views}" + (f"; {left}" if left else "") + ")"

    def _left_out(self) -> str:
        parts = [f"{n} {what}" for n, what in ((self.out_of_scope, "out of scope"), (self.errors, "with errors")) if n]
        return f"{' and '.join(parts)} left out" if parts else ""


def _grouped_key(row: Row):
    return natural_key(row.patient), row.study_uid, _VIEW_RANK.get(row.view, 3), natural_key(row.file)


class RowTable:
    """The rows by key, their order and their patient studies (cached until invalidated)."""

    def __init__(self):
        self.folder: Path | None = None
        self.rows: dict[str, Row] = {}
        self.order_name, self.descending = ORDER_GROUPED, False
        self._ordered: list[str] | None = None
        self._groups: dict | None = None

    def reset(self, folder: Path | None, files, truth: dict, patients: dict) -> None:
        self.folder = folder
        self.rows = {}
        for key in files:
            key = str(key)
            row = Row(key=key, file=self.relative(key), truth=truth.get(key), labelled_patient=patients.get(key))
            row.patient, row.study_uid, row.view = group_of(key, folder, None, row.labelled_patient)
            self.rows[key] = row
        self.invalidate()

    def relative(self, key: str) -> str:
        if self.folder is not None:
            try:
                return Path(key).relative_to(self.folder).as_posix()
            except ValueError:
                pass
        return Path(key).name

    def add_result(self, result) -> str:
        key = str(Path(result.path).resolve())
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = Row(key=key, file=self.relative(key))
        row.result = result
        row.patient, row.study_uid, row.view = group_of(key, self.folder, result.meta, row.labelled_patient)
        return key

    def invalidate(self) -> None:
        self._ordered = None
        self._groups = None

    def set_order(self, name: str, descending: bool) -> None:
        if name not in ORDERS:
            raise ValueError(f"unknown order {name!r}")
        self.order_name, self.descending = name, bool(descending)
        self.invalidate()

    def ordered_keys(self) -> list[str]:
        if self._ordered is None:
            rows = list(self.rows.values())
            if self.order_name == ORDER_PROBABILITY:
                # Unscreened and failed rows stay last either way.
                scored = sorted((r for r in rows if r.probability is not None),
                                key=lambda r: (r.probability, natural_key(r.file)), reverse=self.descending)
                rest = sorted((r for r in rows if r.probability is None), key=lambda r: natural_key(r.file))
                rows = scored + rest
            elif self.order_name == ORDER_GROUPED:
                rows.sort(key=_grouped_key, reverse=self.descending)
            else:
                rows.sort(key=lambda r: natural_key(r.file), reverse=self.descending)
            self._ordered = [r.key for r in rows]
        return self._ordered

    def groups(self, threshold: float) -> dict[tuple[str, str], StudyGroup]:
        """Patient studies in grouped order, each with its call on its in-scope images."""
        if self._groups is None:
            groups: dict[tuple[str, str], StudyGroup] = {}
            keys = self.ordered_keys() if self.order_name == ORDER_GROUPED and not self.descending else sorted(
                self.rows, key=lambda k: _grouped_key(self.rows[k]))
            for key in keys:
                row = self.rows[key]
                group = groups.setdefault(row.group, StudyGroup(row.patient, row.study_uid))
                group.keys.append(key)
                if row.error is not None:
                    group.errors += 1
                elif row.withheld:
                    group.out_of_scope += 1
                elif row.probability is not None:
                    group.used += 1
                    group.probability = max(group.probability or 0.0, row.probability)
                    if row.view and row.view not in group.views:
                        group.views.append(row.view)
            for group in groups.values():
                group.call = classify(group.probability, threshold)
            self._groups = groups
        return self._groups
