"""Read the Kermany chest X-ray archive (zip or tar) without extracting it.

Finds the `chest_xray/{train,test,val}/{NORMAL,PNEUMONIA}/<file>` layout at
any depth (the Mendeley download wraps it in an outer folder, Kaggle's copy
holds it twice, macOS adds `__MACOSX/`), inside an inner archive too, and
hands out each film's bytes. Nothing is written at the archive's own paths:
the caller chooses every output path, so a member named `../../x` can never
land outside the destination; such a name is refused all the same, since an
archive that carries one is not the published set.
"""
from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
import zipfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

PARTS = ("train", "val", "test")
CLASSES = ("NORMAL", "PNEUMONIA")
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
_INNER_ARCHIVE = re.compile(r"\.(zip|tar|tar\.gz|tgz|tar\.bz2|tar\.xz)$", re.IGNORECASE)
_MAX_NESTING = 2


class ArchiveError(Exception):
    """The archive cannot be the chest X-ray set: the message says what is wrong."""


@dataclass(frozen=True)
class Film:
    part: str  # train, val or test
    label: str  # NORMAL or PNEUMONIA
    name: str  # file name only, never a path
    member: str  # the member's name in the archive


@dataclass
class Layout:
    root: str  # e.g. "chest_xray" or "ZhangLabData/CellData/chest_xray"
    films: list[Film]
    ignored: int  # files beside the layout (other roots, __MACOSX, non-images)

    def counts(self) -> dict[str, int]:
        """Films per `part/LABEL`, e.g. {"train/NORMAL": 1341, ...}."""
        return dict(Counter(f"{f.part}/{f.label}" for f in self.films))


class _Reader:
    """One interface over zip and tar: regular-file member names, and bytes by name."""

    def __init__(self, path: Path):
        self.path = path
        try:
            if zipfile.is_zipfile(path):
                self._zip = zipfile.ZipFile(path)
                self._tar = None
                self._links: set[str] = set()
            else:
                self._zip = None
                self._tar = tarfile.open(path)  # noqa: SIM115  (closed in close())
                members = self._tar.getmembers()  # reads the whole index: a cut tar fails here
                self._tar_members = {m.name: m for m in members if m.isfile()}
                self._links = {m.name for m in members if m.issym() or m.islnk()}
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise ArchiveError(f"{path} is not a readable zip or tar archive "
                               f"(truncated or damaged?): {exc}") from exc

    def names(self) -> list[str]:
        if self._zip is not None:
            return [i.filename for i in self._zip.infolist() if not i.is_dir()]
        return list(self._tar_members)

    def links(self) -> set[str]:
        return self._links

    def _open(self, name: str):
        if self._zip is not None:
            return self._zip.open(name)
        return self._tar.extractfile(self._tar_members[name])

    def read(self, name: str) -> bytes:
        """The member's bytes; raises ArchiveError naming the member when it cannot be read."""
        try:
            with self._open(name) as handle:
                return handle.read()
        except Exception as exc:  # bad CRC, zlib.error, EOFError of a cut stream...: all one fault here
            raise ArchiveError(f"{name}: cannot be read from the archive ({exc})") from exc

    def copy_to(self, name: str, target: Path) -> None:
        """Stream a (large) member to `target` without holding it in memory."""
        try:
            with self._open(name) as handle, open(target, "wb") as out:
                shutil.copyfileobj(handle, out, 1 << 20)
        except OSError as exc:
            raise ArchiveError(f"{name}: cannot be copied to {target} ({exc})") from exc
        except Exception as exc:
            raise ArchiveError(f"{name}: cannot be read from the archive ({exc})") from exc

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._tar is not None:
            self._tar.close()


def _unsafe(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", name) is not None


def _layout_entry(name: str) -> tuple[str, Film] | None:
    """(root, film) when `name` is a film of the layout, else None."""
    parts = name.replace("\\", "/").split("/")
    if any(p == "__MACOSX" for p in parts) or parts[-1].startswith("."):
        return None
    for i in range(len(parts) - 3):
        if (parts[i].lower() == "chest_xray" and parts[i + 1] in PARTS and parts[i + 2] in CLASSES
                and i + 4 == len(parts)):
            if not parts[-1].lower().endswith(IMAGE_SUFFIXES):
                return None
            return "/".join(parts[:i + 1]), Film(parts[i + 1], parts[i + 2], parts[-1], name)
    return None


def find_layout(names: list[str]) -> Layout | None:
    """The shallowest `chest_xray/<part>/<CLASS>/` tree among the names, or None."""
    by_root: dict[str, list[Film]] = {}
    for name in names:
        entry = _layout_entry(name)
        if entry:
            by_root.setdefault(entry[0], []).append(entry[1])
    if not by_root:
        return None
    root = min(by_root, key=lambda r: (r.count("/"), r))
    films = sorted(by_root[root], key=lambda f: (f.part, f.label, f.name))
    return Layout(root=root, films=films, ignored=len(names) - len(films))


def _check_names(reader: _Reader) -> None:
    unsafe = [n for n in reader.names() if _unsafe(n)] + sorted(n for n in reader.links() if _unsafe(n))
    if unsafe:
        raise ArchiveError(f"{reader.path}: unsafe member path(s), refused: {', '.join(unsafe[:5])}")
    linked = sorted(n for n in reader.links() if _layout_entry(n))
    if linked:
        raise ArchiveError(f"{reader.path}: links where films belong, refused: {', '.join(linked[:5])}")


def _describe_top(names: list[str]) -> str:
    tops = sorted({n.replace("\\", "/").strip("/").split("/")[0] for n in names})
    return ", ".join(tops[:8]) + (" ..." if len(tops) > 8 else "") if tops else "nothing"


@contextmanager
def open_films(archive: Path, scratch: Path) -> Iterator[tuple[Layout, _Reader]]:
    """Open `archive` (or the one archive inside it holding the layout) and find the films.

    An inner archive is copied to `scratch` first (zip members cannot be
    seeked in place); the copy is removed on leaving.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise ArchiveError(f"archive not found: {archive}")
    readers: list[_Reader] = []
    temp = Path(tempfile.mkdtemp(prefix="inner-archive-", dir=scratch))
    try:
        reader = _Reader(archive)
        readers.append(reader)
        for depth in range(_MAX_NESTING + 1):
            _check_names(reader)
            names = reader.names()
            layout = find_layout(names)
            if layout:
                yield layout, reader
                return
            inner = [n for n in names if _INNER_ARCHIVE.search(n) and "__MACOSX" not in n]
            if len(inner) != 1 or depth == _MAX_NESTING:
                raise ArchiveError(
                    f"{archive}: no chest_xray/{{train,test}}/{{NORMAL,PNEUMONIA}}/ folders found "
                    f"(top level holds: {_describe_top(names)})")
            copy = temp / f"inner-{depth}{''.join(PurePosixPath(inner[0]).suffixes[-2:])}"
            reader.copy_to(inner[0], copy)
            reader = _Reader(copy)
            readers.append(reader)
    finally:
        for r in readers:
            r.close()
        shutil.rmtree(temp, ignore_errors=True)
