"""Reading: the results store, the reader's session (queues, decisions, sign-off) and the
study report. Uses screening, models and imaging; never training.
"""
from core.reading.session import ReadingSession

__all__ = ["ReadingSession"]
