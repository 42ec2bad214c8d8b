"""Rendering: Presentation LUTs, 12-bit data in 16-bit rasters, 12-bit JPEG
Extended, multi-frame paging and reduced decodes. Each rendition of a real
X-ray must show the same picture as its source."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import JPEGLSLossless, RLELossless

import conftest_loader_helpers as h
from core.imaging import dicom_display
from core.imaging.loader import ImageLoadError, load_image


@pytest.fixture(scope="module")
def v() -> np.ndarray:
    return h.read_grey(h.small_source())


def same_picture(pixels, reference, minimum=0.999) -> None:
    assert pixels.shape == reference.shape
    assert h.correlation(pixels, reference) > minimum  # > 0 pins polarity too


# --- Presentation LUT ----------------------------------------------------------

def test_presentation_lut_shape_inverse_is_applied(v, tmp_path):
    # MONOCHROME2 stored inverted; INVERSE turns it back (as a viewer would).
    ds = h.with_pixels((255 - v).astype(np.uint8), "MONOCHROME2", 8, PresentationLUTShape="INVERSE")
    image = load_image(h.save(ds, tmp_path / "a.dcm"))
    np.testing.assert_allclose(image.pixels, v / 255.0, atol=1e-6)
    assert image.meta["PresentationLUTShape"] == "INVERSE"


def test_identity_shape_changes_nothing(v, tmp_path):
    ds = h.with_pixels(v, "MONOCHROME2", 8, PresentationLUTShape="IDENTITY")
    np.testing.assert_allclose(load_image(h.save(ds, tmp_path / "a.dcm")).pixels, v / 255.0, atol=1e-6)


def test_monochrome1_with_inverse_is_inverted_once(v, tmp_path):
    # DX pairs MONOCHROME1 with INVERSE: the same inversion, not two.
    stored = (4095 - v.astype(np.uint16) * 16).astype(np.uint16)
    ds = h.with_pixels(stored, "MONOCHROME1", 12, PresentationLUTShape="INVERSE")
    same_picture(load_image(h.save(ds, tmp_path / "a.dcm")).pixels, v)


def test_jpeg_ls_monochrome1_15_bit_with_inverse(v, tmp_path):
    stored = (32767 - v.astype(np.uint16) * 128).astype(np.uint16)
    ds = h.with_pixels(stored, "MONOCHROME1", 15, PresentationLUTShape="INVERSE")
    ds.compress(JPEGLSLossless)
    same_picture(load_image(h.save(ds, tmp_path / "a.dcm")).pixels, v)


def test_presentation_lut_sequence_is_applied(v, tmp_path):
    ds = h.with_pixels(v, "MONOCHROME2", 8)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 8]
    item.LUTData = list(range(255, -1, -1))  # an inverting LUT
    item["LUTData"].VR = "US"
    ds.PresentationLUTSequence = [item]
    image = load_image(h.save(ds, tmp_path / "a.dcm"))
    np.testing.assert_allclose(image.pixels, 1.0 - v / 255.0, atol=1e-6)


def test_modality_lut_sequence_and_inverse_in_rle(v, tmp_path):
    # Stored values index a Modality LUT (identity here into 8 bits, reversed).
    stored = (255 - v).astype(np.uint16)
    ds = h.with_pixels(stored, "MONOCHROME2", 12)
    item = Dataset()
    item.LUTDescriptor = [256, 0, 12]
    item.ModalityLUTType = "US"
    item.LUTData = [i * 16 for i in range(256)]
    item["LUTData"].VR = "US"
    ds.ModalityLUTSequence = [item]
    ds.PresentationLUTShape = "INVERSE"
    ds.compress(RLELossless)
    same_picture(load_image(h.save(ds, tmp_path / "a.dcm")).pixels, v)


# --- 16-bit rasters ------------------------------------------------------------

def write_png(path, array, extra: bytes = b""):
    ok, encoded = cv2.imencode(".png", array)
    assert ok
    data = encoded.tobytes()
    if extra:  # insert a chunk right after IHDR (8 signature + 25 IHDR bytes)
        data = data[:33] + extra + data[33:]
    path.write_bytes(data)
    return path


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    import zlib

    return (len(payload).to_bytes(4, "big") + kind + payload
            + zlib.crc32(kind + payload).to_bytes(4, "big"))


@pytest.mark.parametrize("suffix", [".png", ".tiff"])
def test_twelve_bit_in_sixteen_bit_is_scaled_by_4095(suffix, v, tmp_path):
    path = tmp_path / f"twelve{suffix}"
    ok, encoded = cv2.imencode(suffix, v.astype(np.uint16) * 16)
    path.write_bytes(encoded.tobytes())
    image = load_image(path)
    np.testing.assert_allclose(image.pixels, v.astype(np.float64) * 16 / 4095.0, atol=1e-6)
    assert image.meta["significant_bits"] == 12
    assert abs(float(image.pixels.mean()) - float(v.mean()) / 255.0) < 0.01  # not near-black


def test_ten_bit_in_sixteen_bit(v, tmp_path):
    image = load_image(write_png(tmp_path / "a.png", v.astype(np.uint16) * 4))
    np.testing.assert_allclose(image.pixels, v.astype(np.float64) * 4 / 1023.0, atol=1e-6)


def test_png_sbit_chunk_states_the_depth(v, tmp_path):
    # A dark 12-bit image (max 1020) would read as 10-bit; sBIT says 12.
    dark = v.astype(np.uint16) * 4
    path = write_png(tmp_path / "a.png", dark, png_chunk(b"sBIT", bytes([12])))
    image = load_image(path)
    np.testing.assert_allclose(image.pixels, dark / 4095.0, atol=1e-6)


def test_eight_bit_png_unchanged(v, tmp_path):
    image = load_image(write_png(tmp_path / "a.png", v))
    np.testing.assert_array_equal(image.pixels, (v / 255.0).astype(np.float32))


# --- JPEG Extended 12-bit --------------------------------------------------------

def test_jpeg_lossy_12_bit_decodes():
    """pydicom's JPEG-lossy.dcm: a 12-bit Process 4 file whose scan header has
    Se=0; it must decode to the same picture as its well-formed twin."""
    image = load_image(get_testdata_file("JPEG-lossy.dcm"))
    reference = load_image(get_testdata_file("JPGExtended.dcm")).pixels
    assert image.meta["TransferSyntax"] == "JPEG Extended (Process 2 and 4)"
    assert image.pixels.shape == (1024, 256)
    np.testing.assert_allclose(image.pixels, reference, atol=1e-3)
    assert image.pixels.max() > 0


# --- multi-frame -------------------------------------------------------------

def three_frames(v):
    return h.multi_frame(v)  # frames: v, 255 - v, zeros


def test_frames_can_be_paged(v, tmp_path):
    path = h.save(three_frames(v), tmp_path / "a.dcm")
    np.testing.assert_allclose(load_image(path, frame=0).pixels, v / 255.0, atol=1e-6)
    second = load_image(path, frame=1)
    np.testing.assert_allclose(second.pixels, (255 - v) / 255.0, atol=1e-6)
    assert second.meta["frame"] == 1 and second.meta["frame_count"] == 3
    assert "frame 2 of 3" in second.meta["note"]


def test_missing_frame_is_a_clear_error(v, tmp_path):
    path = h.save(three_frames(v), tmp_path / "a.dcm")
    with pytest.raises(ImageLoadError, match="frame 4 does not exist: the file has 3 frame"):
        load_image(path, frame=3)
    jpeg = h.small_source()
    with pytest.raises(ImageLoadError, match="frame 2 does not exist"):
        load_image(jpeg, frame=1)
    assert load_image(jpeg, frame=0).pixels.shape == (224, 224)


def test_representative_frame_is_the_default(v, tmp_path):
    ds = three_frames(v)
    ds.RepresentativeFrameNumber = 2  # 1-based
    image = load_image(h.save(ds, tmp_path / "a.dcm"))
    assert image.meta["frame"] == 1
    np.testing.assert_allclose(image.pixels, (255 - v) / 255.0, atol=1e-6)


# --- reduced decodes -------------------------------------------------------------

def test_reduced_decode_runs_the_luts_at_reduced_size(tmp_path, monkeypatch):
    big = cv2.resize(h.read_grey(h.large_source()), (1024, 1024), interpolation=cv2.INTER_AREA)
    ds = h.with_pixels(big.astype(np.uint16) * 16, "MONOCHROME2", 12,
                       WindowCenter=2048, WindowWidth=4096)
    path = h.save(ds, tmp_path / "big.dcm")
    seen = []
    real = dicom_display.apply_modality_lut
    monkeypatch.setattr(dicom_display, "apply_modality_lut",
                        lambda arr, d: seen.append(arr.shape) or real(arr, d))
    small = load_image(path, max_side=256)
    assert small.pixels.shape == (256, 256)
    assert max(seen[0]) == 256  # the frame was shrunk before the LUT chain
    full = load_image(path).pixels
    expected = cv2.resize(full, (256, 256), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(small.pixels, expected, atol=2e-3)


def test_info_pages_frames_counted_from_one(v, tmp_path, capsys):
    import json

    from core import cli

    path = h.save(three_frames(v), tmp_path / "a.dcm")
    assert cli.main(["info", str(path), "--frame", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["meta"]["frame"] == 1
    assert cli.main(["info", str(path), "--frame", "4"]) == 2
    assert "frame 4 does not exist" in capsys.readouterr().err
    assert cli.main(["info", str(path), "--frame", "0"]) == 2
