"""Raster loading, robustness, the max_side fast path and folder discovery."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydicom.data import get_testdata_files

import conftest_loader_helpers as h
from core.imaging.discovery import discover
from core.imaging.loader import (
    ImageLoadError,
    jpeg_header,
    label_from_path,
    load_image,
)


@pytest.fixture(scope="module")
def v() -> np.ndarray:
    return h.read_grey(h.small_source())


def write_image(path: Path, image: np.ndarray, params=()) -> Path:
    ok, encoded = cv2.imencode(path.suffix, image, list(params))
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


def load_error(path, **kwargs) -> str:
    with pytest.raises(ImageLoadError) as info:
        load_image(path, **kwargs)
    return info.value.message


def assert_display_ready(pixels: np.ndarray) -> None:
    assert pixels.dtype == np.float32 and pixels.ndim == 2 and pixels.size
    assert np.isfinite(pixels).all() and pixels.min() >= 0.0 and pixels.max() <= 1.0


# --- formats -----------------------------------------------------------------

def test_training_jpeg(v):
    path = h.small_source()
    image = load_image(path)
    assert image.kind == "jpeg" and image.path == str(path)
    assert image.meta == {"width": 224, "height": 224, "channels": 3, "bit_depth": 8}
    assert_display_ready(image.pixels)
    assert h.correlation(image.pixels, v) > 0.999


def test_kind_comes_from_content_not_suffix(tmp_path):
    path = tmp_path / "misnamed.png"
    shutil.copy(h.small_source(), path)
    assert load_image(path).kind == "jpeg"


def test_png_8_bit_grey_exact(v, tmp_path):
    image = load_image(write_image(tmp_path / "a.png", v))
    assert image.kind == "png"
    np.testing.assert_array_equal(image.pixels, (v / 255.0).astype(np.float32))


def test_png_16_bit_full_range(v, tmp_path):
    full = load_image(write_image(tmp_path / "full.png", v.astype(np.uint16) * 257))
    np.testing.assert_allclose(full.pixels, v / 255.0, atol=1e-6)
    assert full.meta["bit_depth"] == 16


def test_colour_png_with_alpha_drops_alpha(tmp_path):
    bgr = h.read_bgr(h.small_source())
    rng = np.random.default_rng(0)
    alpha = rng.integers(0, 256, bgr.shape[:2], dtype=np.uint8)  # includes fully transparent
    image = load_image(write_image(tmp_path / "a.png", np.dstack([bgr, alpha])))
    expected = cv2.cvtColor(bgr.astype(np.float32), cv2.COLOR_BGR2GRAY) / 255.0
    np.testing.assert_allclose(image.pixels, expected, atol=1e-5)
    assert image.meta["channels"] == 4


@pytest.mark.parametrize("colour", [False, True], ids=["grey", "colour"])
def test_bmp(colour, v, tmp_path):
    source = h.read_bgr(h.small_source()) if colour else v
    image = load_image(write_image(tmp_path / "a.bmp", source))
    assert image.kind == "bmp"
    assert h.correlation(image.pixels, v) > 0.999


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tiff(dtype, v, tmp_path):
    scale = 257 if dtype == np.uint16 else 1
    image = load_image(write_image(tmp_path / "a.tiff", v.astype(dtype) * scale))
    assert image.kind == "tiff"
    np.testing.assert_allclose(image.pixels, v / 255.0, atol=1e-6)


def test_non_ascii_path(tmp_path):
    folder = tmp_path / "Ünïcødé_胸部"
    folder.mkdir()
    path = folder / "röntgen_胸.jpeg"
    shutil.copy(h.small_source(), path)
    assert load_image(path).pixels.shape == (224, 224)
    assert discover(tmp_path) == [path]


# --- truncation and padding --------------------------------------------------

def test_truncated_jpeg(tmp_path):
    data = h.large_source().read_bytes()
    path = tmp_path / "cut.jpeg"
    path.write_bytes(data[: len(data) * 6 // 10])
    assert load_error(path) == "JPEG is truncated"
    assert load_error(path, max_side=128) == "JPEG is truncated"


@pytest.mark.parametrize("tail", [b"\x00" * 512, b"trailing vendor bytes"], ids=["zeros", "junk"])
def test_jpeg_with_bytes_after_end_marker_loads(tail, v, tmp_path):
    path = tmp_path / "padded.jpeg"
    path.write_bytes(h.small_source().read_bytes() + tail)
    assert h.correlation(load_image(path).pixels, v) > 0.999


def test_truncated_png(v, tmp_path):
    path = write_image(tmp_path / "a.png", v)
    path.write_bytes(path.read_bytes()[:-30])
    assert load_error(path) == "PNG is truncated"


def test_png_claiming_more_pixels_than_can_be_decoded_says_so(tmp_path):
    """A 74-byte PNG whose header claims 100000 x 100000: OpenCV refuses it with an
    assertion; the reader gets a reason, not "could not be read (error)"."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    path = tmp_path / "huge.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 100))
                     + chunk(b"IEND", b""))
    assert load_error(path).startswith("PNG header claims more pixels than can be decoded")


# --- refusals ----------------------------------------------------------------

def test_missing_empty_folder_and_text(tmp_path):
    assert load_error(tmp_path / "nowhere.jpeg") == "file not found"
    (tmp_path / "empty.jpeg").write_bytes(b"")
    assert load_error(tmp_path / "empty.jpeg") == "empty file"
    assert "folder" in load_error(tmp_path)
    (tmp_path / "notes.jpg").write_text("not really a picture\n")
    assert load_error(tmp_path / "notes.jpg") == "not an image file"


def test_max_side_must_be_positive():
    with pytest.raises(ValueError):
        load_image(h.small_source(), max_side=0)


def broken_files(folder: Path) -> list[Path]:
    """Damaged and non-image inputs the loader must refuse cleanly."""
    rng = np.random.default_rng(1)
    jpeg = h.large_source().read_bytes()
    png = cv2.imencode(".png", h.read_grey(h.small_source()))[1].tobytes()
    dicom = h.save(h.mono2_8bit(h.read_grey(h.small_source())), folder / "whole.dcm").read_bytes()
    contents = {
        "truncated.jpeg": jpeg[: len(jpeg) // 3],
        "header_only.jpeg": jpeg[:600],
        "truncated.png": png[: len(png) // 2],
        "truncated.dcm": dicom[: len(dicom) // 2],
        "header_only.dcm": dicom[:300],
        "empty.jpeg": b"",
        "random.jpeg": rng.bytes(5000),
        "random.dcm": rng.bytes(5000),
        "random_noext": rng.bytes(5000),
        "text.jpg": b"hello, this is text\n" * 20,
        "text.dcm": b"hello, this is text\n" * 20,
        "magic_only.dcm": b"\x00" * 128 + b"DICM",
        "jpeg_magic_only.jpg": b"\xff\xd8\xff\xe0",
        "png_magic_only.png": b"\x89PNG\r\n\x1a\n",
        "tiff_magic_only.tif": b"II*\x00" + b"\xff" * 40,
        "bmp_magic_only.bmp": b"BM" + b"\x00" * 60,
    }
    paths = []
    for name, data in contents.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom flags its broken samples
def test_every_input_loads_cleanly_or_raises_image_load_error(tmp_path):
    """pydicom's whole test corpus plus damaged files: a good array or ImageLoadError."""
    inputs = [Path(p) for p in get_testdata_files() if Path(p).is_file()]
    inputs += broken_files(tmp_path)
    failures, loaded = [], 0
    for path in inputs:
        try:
            assert_display_ready(load_image(path).pixels)
            loaded += 1
        except ImageLoadError as exc:
            if not exc.message or exc.path != str(path):
                failures.append(f"{path.name}: bad error {exc!r}")
        except Exception as exc:  # noqa: BLE001 - the point is to catch anything
            failures.append(f"{path.name}: {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)
    assert loaded > 50  # the corpus holds many real images: most must load


# --- max_side and the reduced JPEG decode ------------------------------------

def test_jpeg_header_reads_size_without_decoding():
    path = h.large_source()
    rows, cols = h.read_grey(path).shape
    assert jpeg_header(path.read_bytes())[:2] == (rows, cols)


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_max_side_fast_path(progressive, tmp_path, monkeypatch):
    path = h.large_source()
    if progressive:
        path = write_image(tmp_path / "p.jpeg", h.read_grey(path), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    full = load_image(path).pixels
    flags = []
    real_imdecode = cv2.imdecode
    monkeypatch.setattr(cv2, "imdecode", lambda buf, flag: flags.append(flag) or real_imdecode(buf, flag))

    small = load_image(path, max_side=256)

    assert flags and flags[0] & ~cv2.IMREAD_IGNORE_ORIENTATION in (
        cv2.IMREAD_REDUCED_GRAYSCALE_2, cv2.IMREAD_REDUCED_GRAYSCALE_4, cv2.IMREAD_REDUCED_GRAYSCALE_8)
    rows, cols = small.pixels.shape
    assert max(rows, cols) == 256
    assert abs(rows / cols - full.shape[0] / full.shape[1]) < 0.01
    reference = cv2.resize(full, (cols, rows), interpolation=cv2.INTER_AREA)
    assert h.correlation(small.pixels, reference) > 0.99
    assert (small.meta["width"], small.meta["height"]) == (full.shape[1], full.shape[0])


def test_max_side_never_upscales():
    assert load_image(h.small_source(), max_side=1000).pixels.shape == (224, 224)


def test_max_side_for_png(v, tmp_path):
    image = load_image(write_image(tmp_path / "a.png", v[:, :200]), max_side=100)
    assert image.pixels.shape == (100, 89)


# --- discover and labels -----------------------------------------------------

def test_discover(v, tmp_path):
    jpeg = h.small_source().read_bytes()
    layout = {
        "b/NORMAL/x.jpeg": jpeg,
        "a/PNEUMONIA/deep/y.PNG": jpeg,
        "a/z.dcm": b"",
        "c/scan.tif": jpeg,
        ".hidden_dir/hidden.jpeg": jpeg,
        "a/.hidden.jpeg": jpeg,
        "labels.csv": b"path,label\nx.jpeg,NORMAL\n",
        "notes.txt": b"text",
        "a/readme": b"no magic here",
    }
    for name, data in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    bare = h.save(h.mono2_8bit(v), tmp_path / "c" / "IM000001")  # with preamble, no suffix
    unknown = h.save(h.mono2_8bit(v), tmp_path / "c" / "series.001")

    found = discover(tmp_path)

    expected = sorted([tmp_path / "b/NORMAL/x.jpeg", tmp_path / "a/PNEUMONIA/deep/y.PNG",
                       tmp_path / "a/z.dcm", tmp_path / "c/scan.tif", bare, unknown])
    assert found == expected
    assert found == sorted(found)


def test_discover_on_real_data_folder():
    found = discover(h.FULLRES)
    assert len(found) == len(list(h.FULLRES.glob("*/*.jpeg")))
    assert {label_from_path(p) for p in found} == {"NORMAL", "PNEUMONIA"}


@pytest.mark.parametrize("path, label", [
    ("study/NORMAL/a.jpeg", "NORMAL"),
    ("study/pneumonia/sub/a.dcm", "PNEUMONIA"),
    ("study/other/a.png", None),
    ("NORMAL.jpeg", None),
])
def test_label_from_path(path, label):
    assert label_from_path(os.path.join(*path.split("/"))) == label


# --- the last gate -----------------------------------------------------------

def test_float_tiff_in_unit_range_is_kept(v, tmp_path):
    image = load_image(write_image(tmp_path / "f.tiff", (v / 255.0).astype(np.float32)))
    np.testing.assert_allclose(image.pixels, v / 255.0, atol=1e-6)


def test_non_finite_pixels_are_refused(v, tmp_path):
    values = (v / 255.0).astype(np.float32)
    values[10, 10] = np.nan
    path = write_image(tmp_path / "nan.tiff", values)
    assert load_error(path) == "image contains invalid pixel values"


@pytest.mark.parametrize("raised, message", [
    (RuntimeError("decoder bug"), "image could not be read (RuntimeError)"),
    (MemoryError(), "image is too large to load"),
])
def test_unexpected_errors_become_image_load_errors(raised, message, v, tmp_path, monkeypatch):
    def explode(*_args, **_kwargs):
        raise raised

    monkeypatch.setattr("core.imaging.loader.decode_dicom", explode)
    path = h.save(h.mono2_8bit(v), tmp_path / "a.dcm")
    assert load_error(path) == message
