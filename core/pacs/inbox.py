"""The inbox: received DICOM files under DIR/<StudyInstanceUID>/<SOPInstanceUID>.dcm.

Files are written atomically (temporary file in the same folder, fsync, rename),
so a reader or a crash never sees half a file. UIDs are validated before they
become names, and the final path is checked to lie inside the inbox, so no UID
or tag can choose a path elsewhere. Refusals (too large, disk nearly full) are
raised as `InboxRefusal` with a message fit for the sender's log and ours.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from core.files import write_atomically
from core.pacs.nodes import InvalidIdentifier, check_uid

DEFAULT_MAX_FILE_BYTES = 512 * 1024 ** 2  # a large uncompressed DX is ~50 MB
DEFAULT_MIN_FREE_BYTES = 1024 ** 3  # keep 1 GiB free for the OS, the store and the outbox
SUFFIX = ".dcm"
PARTIAL_PREFIX = ".incoming-"  # a file being written; never listed, removed at start
STATE_DIR = ".pneumoscan"  # listener state (outbox) kept with its data; never a valid UID


def size_text(size: int) -> str:
    for unit, scale in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


class InboxRefusal(Exception):
    """A file the inbox will not take (readable message)."""


@dataclass(frozen=True)
class StoredFile:
    study_uid: str
    sop_uid: str
    path: Path


class Inbox:
    def __init__(self, root, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
                 min_free_bytes: int = DEFAULT_MIN_FREE_BYTES):
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_file_bytes = int(max_file_bytes)
        self.min_free_bytes = int(min_free_bytes)

    @property
    def state_dir(self) -> Path:
        path = self.root / STATE_DIR
        path.mkdir(exist_ok=True)
        return path

    def path_for(self, study_uid, sop_uid) -> Path:
        """Where an instance goes; InvalidIdentifier for a UID that is not one."""
        study = check_uid(study_uid, "StudyInstanceUID")
        sop = check_uid(sop_uid, "SOPInstanceUID")
        path = self.root / study / f"{sop}{SUFFIX}"
        # Belt and braces: a valid UID cannot escape, but never trust one check.
        if path.resolve().parent.parent != self.root:
            raise InvalidIdentifier(f"UIDs {study!r}/{sop!r} would leave the inbox")
        return path

    def check_room(self, size: int) -> None:
        """Refuse a file above the size limit or one that would leave the disk nearly full."""
        if size > self.max_file_bytes:
            raise InboxRefusal(f"file of {size_text(size)} is above the inbox limit of "
                               f"{size_text(self.max_file_bytes)}")
        free = shutil.disk_usage(self.root).free
        if free - size < self.min_free_bytes:
            raise InboxRefusal(f"disk nearly full: {size_text(free)} free, the inbox keeps at least "
                               f"{size_text(self.min_free_bytes)} free")

    def write(self, study_uid, sop_uid, chunks) -> StoredFile:
        """Write the byte chunks atomically as the instance's file (replacing a resend)."""
        target = self.path_for(study_uid, sop_uid)
        target.parent.mkdir(exist_ok=True)
        write_atomically(target, lambda out: [out.write(chunk) for chunk in chunks], PARTIAL_PREFIX)
        return StoredFile(target.parent.name, target.stem, target)

    def remove_partial_files(self) -> int:
        """Delete what an interrupted transfer left (call before listening); returns how many."""
        removed = 0
        for partial in self.root.glob(f"*/{PARTIAL_PREFIX}*"):
            partial.unlink(missing_ok=True)
            removed += 1
        return removed

    def studies(self) -> list[Path]:
        """Study folders (named by a valid StudyInstanceUID), newest change first."""
        found = []
        for entry in self.root.iterdir():
            try:
                check_uid(entry.name)
            except InvalidIdentifier:
                continue  # state folder, stray files
            if entry.is_dir():
                found.append(entry)
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)

    def files(self, study: Path | None = None) -> list[Path]:
        """Received instances (one study, or all), ignoring partial writes."""
        folders = [study] if study is not None else self.studies()
        return sorted(p for folder in folders for p in folder.glob(f"*{SUFFIX}") if not p.name.startswith("."))
