"""`pneumoscan-cli data fetch`: archives the tests build (zip, tar, nested, damaged), the counts
check, safe extraction, nothing half-written, the no-network message and the resize recipe."""
from __future__ import annotations

import io
import json
import os
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core import cli
from core.training import data_fetch
from core.training.data_fetch import (KAGGLE, KAGGLE_RELEASE, MENDELEY, MENDELEY_RELEASE, DownloadError,
                                      FetchError, build, check_counts, fetch, resize_film)
from core.training.kermany_archive import Film, Layout

# A small set in the published layout: part -> class -> file names (Kermany-style).
SMALL = {
    "train": {"NORMAL": ["IM-0001-0001.jpeg", "IM-0002-0001.jpeg", "NORMAL2-IM-0003-0001.jpeg"],
              "PNEUMONIA": ["person1_bacteria_1.jpeg", "person1_bacteria_2.jpeg", "person2_virus_3.jpeg",
                            "person3_bacteria_4.jpeg"]},
    "test": {"NORMAL": ["IM-0101-0001.jpeg"], "PNEUMONIA": ["person101_virus_9.jpeg", "person102_bacteria_8.jpeg"]},
}
SMALL_COUNTS = {"train/NORMAL": 3, "train/PNEUMONIA": 4, "test/NORMAL": 1, "test/PNEUMONIA": 2}


def original_film(seed: int, colour: bool = False) -> bytes:
    """A full-resolution-like original: not square, grey (or 3 equal channels), JPEG."""
    rng = np.random.default_rng(seed)
    rows, cols = 300 + 7 * seed, 400 - 5 * seed
    grey = (np.linspace(0, 255, cols)[None, :] * 0.6 + rng.integers(0, 100, (rows, cols))).clip(0, 255)
    grey = grey.astype(np.uint8)
    pixels = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR) if colour else grey
    return cv2.imencode(".jpeg", pixels)[1].tobytes()


def members(prefix: str = "chest_xray") -> dict[str, bytes]:
    out = {}
    for part, classes in SMALL.items():
        for label, names in classes.items():
            for i, name in enumerate(names):
                out[f"{prefix}/{part}/{label}/{name}"] = original_film(len(out), colour=i == 1)
    return out


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def write_tar(path: Path, files: dict[str, bytes], mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode) as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def assert_nothing_written(dest: Path) -> None:
    """No data folder, no staging folder, no inner-archive copy: DEST is as it was (empty)."""
    left = sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) if dest.exists() else []
    assert left == []


# --------------------------------------------------------------- good archives

def test_a_small_zip_gives_the_training_layout_resized(tmp_path):
    files = members("ChestXRay2017/chest_xray")  # inside an outer folder, as downloads are
    files["ChestXRay2017/chest_xray/train/NORMAL/.DS_Store"] = b"finder"
    files["__MACOSX/chest_xray/train/NORMAL/._IM-0001-0001.jpeg"] = b"resource fork"
    archive = write_zip(tmp_path / "small.zip", files)
    dest = tmp_path / "data"

    report = build(archive, dest, allow_counts_mismatch=True)

    assert report.counts == SMALL_COUNTS and report.ignored_files == 2
    assert report.release.startswith("unverified")
    for part, classes in SMALL.items():
        for label, names in classes.items():
            assert sorted(p.name for p in (dest / "chest_xray" / part / label).iterdir()) == sorted(names)
    for path in (dest / "chest_xray").rglob("*.jpeg"):
        with Image.open(path) as stored:
            assert stored.format == "JPEG" and stored.mode == "RGB" and stored.size == (224, 224)
            pixels = np.asarray(stored)
        assert np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2])
    written = json.loads((dest / "chest_xray" / "fetch_report.json").read_text())
    assert written["counts"] == SMALL_COUNTS and written["recipe"]["jpeg_quality"] == 75
    assert not (dest / ".chest_xray.incomplete").exists()


def test_a_tar_gz_inside_an_outer_zip_is_found(tmp_path):
    inner = write_tar(tmp_path / "ChestXRay2017.tar.gz", members())
    outer = write_zip(tmp_path / "download.zip", {"rscbjbr9sj-2/ChestXRay2017.tar.gz": inner.read_bytes(),
                                                  "rscbjbr9sj-2/README.txt": b"read me"})
    report = build(outer, tmp_path / "data", allow_counts_mismatch=True)
    assert report.counts == SMALL_COUNTS
    assert not [p for p in (tmp_path / "data").iterdir() if p.name != "chest_xray"]  # inner copy removed


def test_the_shallowest_copy_is_used_when_an_archive_holds_the_set_twice(tmp_path):
    files = members("chest_xray") | {k.replace("chest_xray/", "chest_xray/chest_xray/", 1): v
                                     for k, v in members("chest_xray").items() if "/train/" in k}
    report = build(write_zip(tmp_path / "twice.zip", files), tmp_path / "data", allow_counts_mismatch=True)
    assert report.counts == SMALL_COUNTS and report.ignored_files == 7


def test_cli_fetch_from_an_archive_prints_the_report(tmp_path, capsys):
    archive = write_zip(tmp_path / "small.zip", members())
    code = cli.main(["data", "fetch", "--dest", str(tmp_path / "data"), "--from", str(archive),
                     "--allow-counts-mismatch"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["counts"] == SMALL_COUNTS
    assert (tmp_path / "data" / "chest_xray" / "train" / "PNEUMONIA" / "person2_virus_3.jpeg").is_file()


# ------------------------------------------------------------------ the counts

def test_the_published_counts_name_their_release():
    assert check_counts(dict(KAGGLE)) == KAGGLE_RELEASE
    assert check_counts(dict(MENDELEY)) == MENDELEY_RELEASE
    assert KAGGLE["train/NORMAL"] == 1341 and KAGGLE["train/PNEUMONIA"] == 3875
    assert KAGGLE["test/NORMAL"] == 234 and KAGGLE["test/PNEUMONIA"] == 390


def test_other_counts_are_refused_naming_each_one(tmp_path):
    with pytest.raises(FetchError) as refused:
        build(write_zip(tmp_path / "small.zip", members()), tmp_path / "data")
    message = str(refused.value)
    assert "train/NORMAL: 3 files, expected 1,341 (Kaggle) or 1,349 (Mendeley)" in message
    assert "test/PNEUMONIA: 2 files, expected 390" in message
    assert "--allow-counts-mismatch" in message
    assert_nothing_written(tmp_path / "data")
    short = dict(KAGGLE, **{"test/NORMAL": 233})
    with pytest.raises(FetchError, match=r"test/NORMAL: 233 files, expected 234\)"):
        check_counts(short)


@pytest.mark.slow
def test_an_archive_with_the_published_mendeley_counts_is_taken_without_the_flag(tmp_path):
    """5,856 tiny films in Mendeley's layout: accepted as published, and train/ comes out
    as the project's training folder (1,341 / 3,875) with Kaggle's 8 + 8 in val/."""
    tiny = cv2.imencode(".jpeg", np.full((12, 10), 90, np.uint8))[1].tobytes()
    names = {"NORMAL": lambda i: f"IM-{i:04d}-0001.jpeg", "PNEUMONIA": lambda i: f"person{i}_bacteria_{i}.jpeg"}
    files = {}
    for key, count in MENDELEY.items():
        part, label = key.split("/")
        for i in range(count):
            files[f"ChestXRay2017/chest_xray/{part}/{label}/{part}-{names[label](i)}"] = tiny
    report = build(write_zip(tmp_path / "ChestXRay2017.zip", files), tmp_path / "data")
    assert report.release == MENDELEY_RELEASE
    assert report.counts == {"train/NORMAL": 1341, "train/PNEUMONIA": 3875, "val/NORMAL": 8,
                             "val/PNEUMONIA": 8, "test/NORMAL": 234, "test/PNEUMONIA": 390}
    val = sorted(p.name for p in (tmp_path / "data" / "chest_xray" / "val" / "PNEUMONIA").iterdir())
    assert val == sorted(f"train-person{i}_bacteria_{i}.jpeg" for i in range(3875, 3883))


def test_mendeley_train_part_gives_kaggle_validation_films_back():
    """Mendeley's train holds 8 more films per class; the highest-numbered 8 go to val."""
    names = [f"person{n}_bacteria_{n}.jpeg" for n in range(1, 21)]  # person9 < person10: natural order
    films = [Film("train", "PNEUMONIA", name, f"chest_xray/train/PNEUMONIA/{name}") for name in names]
    films += [Film("test", "NORMAL", "IM-0001-0001.jpeg", "chest_xray/test/NORMAL/IM-0001-0001.jpeg")]
    split = data_fetch._kaggle_split(Layout("chest_xray", films, 0), MENDELEY_RELEASE)
    val = sorted(int(f.name.split("_")[0][6:]) for f in split if f.part == "val")
    assert val == list(range(13, 21))
    assert sum(f.part == "test" for f in split) == 1
    assert data_fetch._kaggle_split(Layout("chest_xray", films, 0), KAGGLE_RELEASE) == films


# ------------------------------------------------------------- damaged archives

def test_a_truncated_zip_is_refused(tmp_path):
    whole = write_zip(tmp_path / "whole.zip", members()).read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(FetchError, match=r"cut\.zip is not a readable zip or tar archive \(truncated or damaged"):
        build(cut, tmp_path / "data", allow_counts_mismatch=True)
    assert_nothing_written(tmp_path / "data")


def test_a_truncated_tar_gz_is_refused(tmp_path):
    whole = write_tar(tmp_path / "whole.tar.gz", members()).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    with pytest.raises(FetchError, match="truncated or damaged"):
        build(cut, tmp_path / "data", allow_counts_mismatch=True)
    assert_nothing_written(tmp_path / "data")


def test_a_wrong_layout_is_refused_saying_what_it_holds(tmp_path):
    files = {f"images/{Path(k).name}": v for k, v in members().items()}
    with pytest.raises(FetchError, match=r"no chest_xray/\{train,test\}/\{NORMAL,PNEUMONIA\}/ folders "
                                         r"found \(top level holds: images\)"):
        build(write_zip(tmp_path / "flat.zip", files), tmp_path / "data", allow_counts_mismatch=True)
    assert_nothing_written(tmp_path / "data")


def test_unreadable_films_are_named_and_nothing_is_kept(tmp_path):
    files = members()
    files["chest_xray/train/NORMAL/IM-0009-0001.jpeg"] = b"not a JPEG at all"
    files["chest_xray/test/PNEUMONIA/person9_virus_9.jpeg"] = original_film(40)[:600]  # cut short
    with pytest.raises(FetchError) as refused:
        build(write_zip(tmp_path / "bad.zip", files), tmp_path / "data", allow_counts_mismatch=True)
    message = str(refused.value)
    assert message.startswith("2 unreadable film(s), nothing kept")
    assert "chest_xray/train/NORMAL/IM-0009-0001.jpeg" in message
    assert "chest_xray/test/PNEUMONIA/person9_virus_9.jpeg" in message
    assert_nothing_written(tmp_path / "data")


def test_a_member_with_a_bad_checksum_is_named(tmp_path):
    files = members()
    name = "chest_xray/train/PNEUMONIA/person3_bacteria_4.jpeg"
    raw = bytearray(write_zip(tmp_path / "ok.zip", files).read_bytes())
    with zipfile.ZipFile(tmp_path / "ok.zip") as archive:
        info = archive.getinfo(name)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0xFF  # one flipped byte in the middle of its data
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(raw))
    with pytest.raises(FetchError, match=r"1 unreadable film\(s\), nothing kept: .*person3_bacteria_4\.jpeg"):
        build(damaged, tmp_path / "data", allow_counts_mismatch=True)
    assert_nothing_written(tmp_path / "data")


@pytest.mark.parametrize("evil", ["../outside.jpeg", "chest_xray/../../outside.jpeg", "/tmp/abs.jpeg"])
def test_member_paths_leaving_the_archive_are_refused(tmp_path, evil):
    files = members() | {evil: original_film(50)}
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(FetchError, match="unsafe member path"):
        build(write_tar(tmp_path / "evil.tar", files, "w"), work / "data", allow_counts_mismatch=True)
    assert not (tmp_path / "outside.jpeg").exists() and not (work / "outside.jpeg").exists()
    assert_nothing_written(work / "data")


def test_a_link_where_a_film_belongs_is_refused(tmp_path):
    path = tmp_path / "link.tar"
    write_tar(path, members(), "w")
    with tarfile.open(path, "a") as archive:
        link = tarfile.TarInfo("chest_xray/train/NORMAL/IM-0042-0001.jpeg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
    with pytest.raises(FetchError, match="links where films belong"):
        build(path, tmp_path / "data", allow_counts_mismatch=True)


def test_an_existing_chest_xray_folder_is_never_replaced(tmp_path):
    kept = tmp_path / "data" / "chest_xray" / "train" / "NORMAL" / "mine.jpeg"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"someone's data")
    with pytest.raises(FetchError, match="already exists"):
        build(write_zip(tmp_path / "small.zip", members()), tmp_path / "data", allow_counts_mismatch=True)
    assert kept.read_bytes() == b"someone's data"


def test_a_stale_staging_folder_from_a_killed_run_is_not_taken_as_data(tmp_path):
    stale = tmp_path / "data" / ".chest_xray.incomplete" / "train" / "NORMAL" / "half.jpeg"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half")
    report = build(write_zip(tmp_path / "small.zip", members()), tmp_path / "data", allow_counts_mismatch=True)
    assert report.counts == SMALL_COUNTS
    assert not list((tmp_path / "data").rglob("half.jpeg"))


def test_a_destination_that_cannot_be_written_is_refused(tmp_path, capsys):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_bytes(b"x")
    archive = write_zip(tmp_path / "small.zip", members())
    with pytest.raises(FetchError, match=f"cannot write in {not_a_folder}"):
        build(archive, not_a_folder, allow_counts_mismatch=True)
    assert cli.main(["data", "fetch", "--dest", str(not_a_folder), "--from", str(archive),
                     "--allow-counts-mismatch"]) == 2
    assert "cannot write in" in capsys.readouterr().err


# ------------------------------------------------------------------ no network

def test_no_network_says_how_to_fetch_by_hand(tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(data_fetch.urllib.request, "urlopen", offline)
    with pytest.raises(DownloadError) as refused:
        fetch(tmp_path / "data")
    message = str(refused.value)
    assert "no network?" in message and "doi.org/10.17632/rscbjbr9sj.2" in message and "--from" in message
    assert_nothing_written(tmp_path / "data")
    assert cli.main(["data", "fetch", "--dest", str(tmp_path / "data")]) == 1
    assert "Download ChestXRay2017.zip by hand" in capsys.readouterr().err


def test_cli_refuses_a_missing_archive_as_bad_input(tmp_path, capsys):
    assert cli.main(["data", "fetch", "--dest", str(tmp_path / "d"), "--from", str(tmp_path / "none.zip")]) == 2
    assert "archive not found" in capsys.readouterr().err


def test_default_destination_is_where_the_model_cards_look(monkeypatch):
    from core.paths import bundle_root

    monkeypatch.delenv("PNEUMOSCAN_DATA", raising=False)
    default = data_fetch.default_data_dir()
    assert default.parent.parent == bundle_root().parent  # beside the repository, not inside it
    card = json.loads((bundle_root() / "models" / "custom_cnn.json").read_text())
    relative = Path(os.path.relpath(default, bundle_root())).as_posix()
    assert f"{relative}/chest_xray/train" in card["training_command"]
    monkeypatch.setenv("PNEUMOSCAN_DATA", "/somewhere/else")
    assert data_fetch.default_data_dir() == Path("/somewhere/else")


# ------------------------------------------------------------ the resize recipe

def test_resizing_reproduces_the_projects_224_px_films(fullres_dir, train_dir):
    """The full-resolution originals, resized, come out as the project's stored films were made:
    the same JPEG tables, and pixels within JPEG noise (mean |difference| under 3 of 255 grey levels;
    nearest-neighbour resizing is about 4, the tables of any other quality differ)."""
    pairs = [(o, train_dir / o.parent.name / o.name) for o in sorted(fullres_dir.glob("*/*.jpeg"))]
    pairs = [(o, s) for o, s in pairs if s.is_file()][:6]
    assert len(pairs) >= 3
    differences = []
    for original, stored in pairs:
        made = Image.open(io.BytesIO(resize_film(original.read_bytes())))
        with Image.open(stored) as shipped:
            assert made.quantization == shipped.quantization
            assert (made.mode, made.size) == (shipped.mode, shipped.size) == ("RGB", (224, 224))
            differences.append(np.abs(np.asarray(made, np.float64) - np.asarray(shipped, np.float64)).mean())
    assert float(np.mean(differences)) < 3.0, differences
