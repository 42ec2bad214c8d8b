"""The status bar: screening progress with counts, speed, the device and the research notice.

After a cancel the not-screened images stay said as such (the counts never
pretend a study is complete).
"""
from __future__ import annotations

import time

from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from core.formatting import format_duration

RESEARCH_NOTICE = "Research use only, not for diagnosis"


class ScreeningStatus:
    def __init__(self, bar: QStatusBar):
        self.bar = bar
        self.progress = QProgressBar(bar)
        self.progress.setObjectName("screeningProgress")
        self.progress.setMaximumWidth(200)
        self.progress.setFormat("%v / %m")
        self.progress.setVisible(False)
        self.counts_label = QLabel(bar)
        self.counts_label.setObjectName("screeningCounts")
        self.rate_label = QLabel(bar)
        self.device_label = QLabel("Device: -", bar)
        self.research_label = QLabel(RESEARCH_NOTICE, bar)
        self.research_label.setObjectName("researchNotice")
        self.unsaved_label = QLabel(bar)  # decisions the store has not written yet
        self.unsaved_label.setObjectName("unsavedDecisions")
        self.unsaved_label.setStyleSheet("color: #b00020; font-weight: bold;")
        self.unsaved_label.setVisible(False)
        # Permanent widgets: a passing status message must not hide the progress or the counts.
        bar.addPermanentWidget(self.unsaved_label)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.counts_label)
        bar.addPermanentWidget(self.rate_label)
        bar.addPermanentWidget(self.device_label)
        bar.addPermanentWidget(self.research_label)
        self._started = 0.0
        self._first_done = 0

    def running(self, total: int, done: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setVisible(True)
        self._started, self._first_done = time.perf_counter(), done

    def stopped(self) -> None:
        self.progress.setVisible(False)
        self.rate_label.clear()

    def show_counts(self, counts: dict, screening: bool) -> None:
        """'65 of 600 screened, 535 not screened, 1 error' (while running: progress and ETA too)."""
        total, screened = counts["total"], counts["screened"]
        parts = [f"{screened} of {total} screened"]
        if counts["unscreened"]:
            parts.append(f"{counts['unscreened']} not screened" + ("" if screening else " (cancelled or stopped)"))
        if counts["errors"]:
            parts.append(f"{counts['errors']} errors")
        if counts.get("out_of_scope"):
            parts.append(f"{counts['out_of_scope']} out of scope")
        parts.append(f"{counts['needs_review_left']} to review")
        self.counts_label.setText(", ".join(parts))
        if screening:
            self.progress.setValue(screened)
            done = screened - self._first_done
            elapsed = time.perf_counter() - self._started
            if done > 0 and elapsed > 0:
                rate = done / elapsed
                self.rate_label.setText(f"{rate:.1f} img/s, about {format_duration((total - screened) / rate)} left")

    def show_unsaved(self, count: int, failing: bool, error: str = "") -> None:
        """Decisions not stored yet: shown only while the store is failing (a queued write
        is a few ms and not worth a flicker), with the error in the tooltip."""
        shown = failing and count > 0
        self.unsaved_label.setVisible(shown)
        if shown:
            noun = "decision" if count == 1 else "decisions"
            self.unsaved_label.setText(f"{count} {noun} NOT SAVED yet: retrying")
            self.unsaved_label.setToolTip(f"The results store refused the write: {error}\n"
                                          "Kept in memory and retried; closing waits for them.")

    def set_device(self, device: str) -> None:
        self.device_label.setText(f"Device: {device}")
