"""Qt signals for a core.reading.session.ReadingSession (the session itself knows no Qt)."""
from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from core.reading import session as events


class SessionSignals(QObject):
    studyChanged = Signal(object)  # folder
    rowsChanged = Signal(object)  # keys or None (all)
    thresholdChanged = Signal(float)
    filterChanged = Signal(str)
    queueChanged = Signal(object)  # queue kind or None
    cursorChanged = Signal(object)  # path key or None
    decisionChanged = Signal(str)  # path key
    signOffChanged = Signal(object)  # core.reading.store.SignOff or None

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._signals = {
            events.STUDY: self.studyChanged, events.ROWS: self.rowsChanged,
            events.THRESHOLD: self.thresholdChanged, events.FILTER: self.filterChanged,
            events.QUEUE: self.queueChanged, events.CURSOR: self.cursorChanged,
            events.DECISION: self.decisionChanged, events.SIGNOFF: self.signOffChanged,
        }
        session.subscribe(self._relay)

    def _relay(self, event: str, payload) -> None:
        signal = self._signals.get(event)
        if signal is not None:
            signal.emit(payload)

    def detach(self) -> None:
        self.session.unsubscribe(self._relay)
