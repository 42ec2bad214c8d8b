"""Which files below a study folder are images, and why every other one is not.

Nothing is dropped without a word: each regular file below the folder ends up
in `images` (screened, or an error row with the loader's reason) or in
`skipped` with a reason. Rules:

- known image suffixes (.jpg .png .dcm ...) are images without opening them;
- known non-image suffixes (.csv .txt .json ...) and hidden files are skipped;
- any other file (no suffix, or an unknown one such as `.001`) is probed: an
  image signature, the DICM magic, or a DICOM data set without preamble
  (implicit or explicit VR, as CD exports and older archives write them)
  makes it an image;
- a DICOMDIR is the media index: its referenced files are images (each once,
  also when the walk finds them too), the DICOMDIR itself is skipped; a
  referenced file that is missing becomes an image so its error row says so;
  a damaged DICOMDIR goes to `index_errors` (its folder is still walked);
- a file or folder whose name is not UTF-8 (Latin-1 bytes from an old CD or a
  Windows copy, on Linux) is skipped and says so: the results store, the CSV and
  the PDF keep names as UTF-8 text, and such a name would break each of them.
  `display_path` shows it with the odd bytes escaped (`r\\xf6ntgen.jpeg`).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from core.imaging.dicom import has_dicm_magic, is_dicomdir, read_header
from core.imaging.loader import IMAGE_SUFFIXES, NON_IMAGE_SUFFIXES, sniff_kind

_PROBE_BYTES = 4096
NOT_UTF8_FILE = "file name is not UTF-8 text: rename the file to screen it"
NOT_UTF8_FOLDER = "folder name is not UTF-8 text (not searched): rename the folder to screen its files"


def _is_utf8(text: str) -> bool:
    """False for names Python decoded with surrogates (bytes that are not UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display_path(path) -> str:
    """A path as UTF-8 text for people and files: bytes that are not UTF-8 are escaped."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


@dataclass
class Discovery:
    images: list[Path] = field(default_factory=list)  # sorted
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (path, reason), sorted
    index_errors: list[tuple[Path, str]] = field(default_factory=list)  # damaged DICOMDIRs


def discover_study(folder) -> Discovery:
    """Walk `folder` recursively (symlinked folders are not followed)."""
    folder = Path(folder)
    images: set[Path] = set()
    skipped: list[tuple[Path, str]] = []
    index_errors: list[tuple[Path, str]] = []
    dicomdirs: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in sorted(dirnames):
            if name.startswith("."):
                skipped.append((Path(dirpath) / name, "hidden folder (not searched)"))
            elif not _is_utf8(name):
                skipped.append((Path(dirpath) / name, NOT_UTF8_FOLDER))
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and _is_utf8(d)]
        for name in filenames:
            path = Path(dirpath) / name
            verdict = _classify(path) if _is_utf8(str(path)) else NOT_UTF8_FILE
            if verdict == "image":
                images.add(path)
            elif verdict == "dicomdir":
                dicomdirs.append(path)
            else:
                skipped.append((path, verdict))
    for index in dicomdirs:
        referenced, problem = _dicomdir_images(index)
        if problem:
            index_errors.append((index, problem))
            skipped.append((index, f"DICOMDIR media index ({problem})"))
            continue
        images.update(_on_disk(path, images) for path in referenced)
        skipped.append((index, f"DICOMDIR media index: its {len(referenced)} referenced files are screened"))
    return Discovery(images=sorted(images), skipped=sorted(skipped), index_errors=sorted(index_errors))


def _classify(path: Path) -> str:
    """'image', 'dicomdir', or the reason the file is skipped."""
    name = path.name
    if name.startswith("."):
        return "hidden file"
    if name.upper() == "DICOMDIR":
        return "dicomdir"
    if name.upper().startswith("DICOMDIR"):  # DICOMDIR.dcm, DICOMDIR-copy: look inside
        return _probe(path)
    if path.is_symlink() and not path.exists():
        return "broken link"
    if not path.is_file():
        return "not a regular file"
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in NON_IMAGE_SUFFIXES:
        return f"not an image ({suffix} file)"
    return _probe(path)


def _probe(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            head = handle.read(_PROBE_BYTES)
    except OSError:
        return "image"  # unreadable: the loader's error row gives the reason
    if not head:
        return "empty file"
    kind = sniff_kind(head)
    if kind is None:
        return "not an image (no image or DICOM content found)"
    if kind != "dicom":
        return "image"
    ds = read_header(path)
    if ds is None:
        return "not an image (no image or DICOM content found)" if not has_dicm_magic(head) else "image"
    return "dicomdir" if is_dicomdir(ds) else "image"


def _dicomdir_images(index: Path) -> tuple[list[Path], str | None]:
    """Files a DICOMDIR references, or ([], the reason it cannot be read)."""
    try:
        import pydicom
        from pydicom.fileset import FileSet

        with warnings.catch_warnings():  # e.g. "invalid transfer syntax ... will be updated"
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(index)
            if not is_dicomdir(ds):
                return [], "named DICOMDIR but not a DICOM media index"
            files = FileSet(ds)  # validates the record tree
        present = {Path(instance.path) for instance in files}
        # FileSet leaves out (with a warning) records whose file is missing:
        # those are taken from the records so the reader is told.
        return sorted(present | set(_referenced_files(ds, index.parent))), None
    except Exception as exc:  # pydicom raises many types for a damaged index
        return [], f"damaged: {type(exc).__name__}: {str(exc)[:120]}"


def _referenced_files(ds, root: Path) -> list[Path]:
    paths = []
    for record in ds.get("DirectoryRecordSequence", []):
        file_id = record.get("ReferencedFileID")
        if not file_id:
            continue
        parts = [file_id] if isinstance(file_id, str) else list(file_id)
        if all(part and part not in (".", "..") and "/" not in part and "\\" not in part
               for part in parts):  # a file ID never leaves the media folder
            paths.append(root.joinpath(*parts))
    return paths


def _on_disk(path: Path, found: set[Path]) -> Path:
    """The walked spelling of a referenced file (media file IDs are upper case;
    the copy on disk may not be), else the path as referenced."""
    if path.exists():
        return path
    for candidate in found:
        if str(candidate).lower() == str(path).lower():
            return candidate
    return path


def discover(folder) -> list[Path]:
    """Image files below `folder`, recursive, sorted (`discover_study` also says which files were
    skipped and why)."""
    return discover_study(folder).images
