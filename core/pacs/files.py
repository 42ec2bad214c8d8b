"""One way to put a file in place: written beside its target, flushed to disk,
then renamed onto it, so a reader (or a restart) never sees half a file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomically(target: Path, write: Callable[[BinaryIO], None], prefix: str) -> None:
    """`write(handle)` fills a temporary file in target's folder, which then replaces target.
    The temporary file (named `prefix*.part`) is removed when anything fails."""
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
