"""One way to put a file in place: written beside its target, flushed to disk, then renamed onto it,
so a reader (or a restart after a crash) never sees half a file. Used by the registry, the
training runs, the PACS inbox/outbox and the exports."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomically(target: Path, write: Callable[[BinaryIO], None], prefix: str = ".writing-") -> None:
    """`write(handle)` fills a temporary file in target's folder, which then replaces target.
    The temporary file (`prefix*.part`, a unique name) is removed when anything fails."""
    target = Path(target)
    fd, temp = tempfile.mkstemp(prefix=prefix, suffix=".part", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_text_atomically(target: Path, text: str, prefix: str = ".writing-") -> None:
    write_atomically(target, lambda out: out.write(text.encode("utf-8")), prefix)
