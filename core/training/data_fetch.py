"""Get the Kermany et al. (2018) chest X-ray set and store it as the project's data was made.

Steps, each its own function: `download` the archive from Mendeley Data (or
take one on disk), `check_counts` against the published release, then
`build` DEST/chest_xray/{train,test[,val]}/{NORMAL,PNEUMONIA}: every film
resized to 224 x 224 (aspect ratio not kept) and stored as a 3-channel JPEG
with identical channels, as ../shared/data was made. Everything is written
into a hidden staging folder first and moved into place only when every film
was read; on any fault the staging folder is removed, so a `chest_xray`
folder in DEST is always a complete one.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from core.paths import bundle_root
from core.training.kermany_archive import ArchiveError, Film, Layout, open_films

DOI = "10.17632/rscbjbr9sj.2"
SOURCE_PAGE = f"https://doi.org/{DOI}"
# Mendeley Data v2, file ChestXRay2017.zip (about 1.2 GB).
DOWNLOAD_URL = ("https://data.mendeley.com/public-files/datasets/rscbjbr9sj/files/"
                "f12eaf6d-6023-432f-acc9-80c9d7393433/file_downloaded")
ARCHIVE_NAME = "ChestXRay2017.zip"

# How ../shared/data was made (reproduced from its full-resolution originals; see README).
SIZE = (224, 224)
JPEG_QUALITY = 75  # Pillow's default; 4:2:0 chroma subsampling, also its default

# The releases of the set, films per part/CLASS. The project's training folder is the
# Kaggle split (1,341 / 3,875); Mendeley's ZIP keeps Kaggle's 8 + 8 validation films in train.
KAGGLE = {"train/NORMAL": 1341, "train/PNEUMONIA": 3875, "val/NORMAL": 8, "val/PNEUMONIA": 8,
          "test/NORMAL": 234, "test/PNEUMONIA": 390}
MENDELEY = {"train/NORMAL": 1349, "train/PNEUMONIA": 3883, "test/NORMAL": 234, "test/PNEUMONIA": 390}
KAGGLE_RELEASE = "Kaggle (train/val/test)"
MENDELEY_RELEASE = "Mendeley Data v2 (train/test)"
RELEASES = {KAGGLE_RELEASE: KAGGLE, MENDELEY_RELEASE: MENDELEY}
VAL_PER_CLASS = 8

Progress = Callable[[int, int], None]


class FetchError(Exception):
    """The data could not be fetched or is not the published set: the message says why."""


class DownloadError(FetchError):
    """The download failed (network, disk): nothing about the data itself."""


@dataclass
class FetchReport:
    dest: str
    source: str
    release: str
    counts: dict[str, int]
    ignored_files: int
    recipe: dict = field(default_factory=lambda: {
        "size": list(SIZE), "aspect_kept": False, "resample": "Pillow bilinear",
        "jpeg_quality": JPEG_QUALITY, "channels": "3 identical"})

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def default_data_dir() -> Path:
    """$PNEUMOSCAN_DATA, else ../shared/data beside the repository: where the model cards'
    commands (`pneumoscan-cli train ../shared/data/chest_xray/train ...`) look."""
    override = os.environ.get("PNEUMOSCAN_DATA")
    return Path(override).expanduser() if override else bundle_root().parent / "shared" / "data"


def download(dest_dir: Path, url: str = DOWNLOAD_URL, timeout: float = 60.0) -> Path:
    """Fetch the archive into dest_dir (kept there: a rerun does not download again)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / ARCHIVE_NAME
    if target.is_file():
        return target
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        partial.unlink(missing_ok=True)
        _remove_if_empty(dest_dir)
        raise DownloadError(
            f"could not download the chest X-ray set from Mendeley Data (no network?): {exc}. "
            f"Download {ARCHIVE_NAME} by hand from {SOURCE_PAGE} and run "
            f"`pneumoscan-cli data fetch --from <path to {ARCHIVE_NAME}>`.") from exc
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"could not write the download to {partial}: {exc}") from exc
    partial.replace(target)
    return target


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (an earlier download) or not ours to remove


def check_counts(counts: dict[str, int], allow_mismatch: bool = False) -> str:
    """The name of the release these counts are, or FetchError naming every count that differs."""
    for name, expected in RELEASES.items():
        if counts == expected:
            return name
    if allow_mismatch:
        return "unverified (counts not checked: --allow-counts-mismatch)"
    problems = []
    for key in sorted(set(KAGGLE) | set(MENDELEY) | set(counts), key=_part_order):
        found, kaggle, mendeley = counts.get(key, 0), KAGGLE.get(key, 0), MENDELEY.get(key, 0)
        if found not in (kaggle, mendeley):
            expected = f"{kaggle:,}" if kaggle == mendeley else f"{kaggle:,} (Kaggle) or {mendeley:,} (Mendeley)"
            problems.append(f"{key}: {found:,} files, expected {expected}")
    detail = "; ".join(problems) or "each count is one release's, but they mix the two"
    raise FetchError(f"the archive does not hold the published set ({detail}); "
                     "--allow-counts-mismatch processes it all the same")


def _part_order(key: str) -> tuple[int, str]:
    part = key.split("/")[0]
    return ({"train": 0, "val": 1, "test": 2}.get(part, 3), key)


def _kaggle_split(layout: Layout, release: str) -> list[Film]:
    """Mendeley's train part holds Kaggle's validation films (the 8 highest-numbered per class,
    missing from the project's training folder): move them to `val`, so `train` is the one
    the shipped models were trained on."""
    if release != MENDELEY_RELEASE:
        return layout.films
    moved: set[Film] = set()
    for label in ("NORMAL", "PNEUMONIA"):
        train = [f for f in layout.films if f.part == "train" and f.label == label]
        moved.update(sorted(train, key=_natural)[-VAL_PER_CLASS:])
    return [Film("val", f.label, f.name, f.member) if f in moved else f for f in layout.films]


def _natural(film: Film) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", film.name)]


def resize_film(data: bytes) -> bytes:
    """One original film -> the stored 224 x 224, 3-channel (identical channels) JPEG."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        grey = image.convert("L")  # one grey level per pixel: the three channels come out identical
    small = grey.resize(SIZE, Image.Resampling.BILINEAR).convert("RGB")
    out = io.BytesIO()
    small.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _output_name(film: Film) -> str:
    stem = film.name.rsplit(".", 1)[0]
    if not stem or stem.startswith(".") or "/" in stem or "\\" in stem:
        raise FetchError(f"{film.member}: not a usable file name")
    return f"{stem}.jpeg"


def build(archive: Path, dest: Path, allow_counts_mismatch: bool = False,
          progress: Progress | None = None, source: str | None = None) -> FetchReport:
    """Check the archive and write DEST/chest_xray; nothing is left half-written."""
    from PIL import Image, UnidentifiedImageError

    final = dest / "chest_xray"
    if final.exists():
        raise FetchError(f"{final} already exists: move it away or choose another --dest")
    staging = dest / ".chest_xray.incomplete"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(staging, ignore_errors=True)  # a run that was killed: never completed, never used
        staging.mkdir()
    except OSError as exc:
        raise FetchError(f"cannot write in {dest}: {exc}") from exc
    try:
        with open_films(Path(archive), dest) as (layout, reader):
            release = check_counts(layout.counts(), allow_counts_mismatch)
            # Archive order: a compressed tar is read forwards once, never re-wound per film.
            order = {name: i for i, name in enumerate(reader.names())}
            films = sorted(_kaggle_split(layout, release), key=lambda f: order[f.member])
            unreadable: list[str] = []
            written: dict[str, int] = {}
            for done, film in enumerate(films, 1):
                target = staging / film.part / film.label / _output_name(film)
                if target.exists():
                    raise FetchError(f"{film.member}: two films would be stored as {target.name}")
                if progress:
                    progress(done, len(films))
                try:
                    stored = resize_film(reader.read(film.member))
                except (ArchiveError, UnidentifiedImageError, Image.DecompressionBombError, OSError,
                        ValueError) as exc:
                    unreadable.append(f"{film.member} ({exc})")
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(stored)
                key = f"{film.part}/{film.label}"
                written[key] = written.get(key, 0) + 1
        if unreadable:
            shown = "; ".join(unreadable[:10]) + (f"; and {len(unreadable) - 10} more" if len(unreadable) > 10 else "")
            raise FetchError(f"{len(unreadable)} unreadable film(s), nothing kept: {shown}")
        report = FetchReport(dest=str(dest), source=source or str(archive), release=release,
                             counts=dict(sorted(written.items(), key=lambda kv: _part_order(kv[0]))),
                             ignored_files=layout.ignored)
        (staging / "fetch_report.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
        staging.rename(final)  # the one step that makes the folder visible: complete or absent
        return report
    except ArchiveError as exc:
        raise FetchError(str(exc)) from exc
    except OSError as exc:  # writing: disk full, permissions
        raise FetchError(f"cannot write the data in {dest} (nothing kept): {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch(dest: Path | None = None, archive: Path | None = None, allow_counts_mismatch: bool = False,
          progress: Progress | None = None) -> FetchReport:
    """`pneumoscan-cli data fetch`: the archive given, else the download, built into DEST."""
    dest = Path(dest) if dest else default_data_dir()
    if archive is None:
        archive = download(dest / "downloads")
        source = DOWNLOAD_URL
    else:
        source = str(archive)
    return build(Path(archive), dest, allow_counts_mismatch, progress, source)
