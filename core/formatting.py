"""Small text helpers for people (progress labels of the window, the wizard and the CLI)."""
from __future__ import annotations


def format_duration(seconds: float) -> str:
    """Human time for progress labels: '45 s', '3 min 05 s', '1 h 02 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
