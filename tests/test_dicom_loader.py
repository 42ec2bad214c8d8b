"""DICOM loading: renditions of a real chest X-ray must show the same picture."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    BasicTextSRStorage,
    JPEG2000Lossless,
    JPEGLSLossless,
    MPEG2MPML,
    RLELossless,
)

import conftest_loader_helpers as h
from core.imaging.loader import ImageLoadError, load_image


@pytest.fixture(scope="module")
def v() -> np.ndarray:
    """Grey pixels (uint8) of a real 224x224 training X-ray."""
    return h.read_grey(h.small_source())


def assert_same_picture(image, reference: np.ndarray) -> None:
    pixels = image.pixels
    assert image.kind == "dicom"
    assert pixels.dtype == np.float32 and pixels.shape == reference.shape
    assert 0.0 <= pixels.min() and pixels.max() <= 1.0
    # > 0.999 also pins polarity (inverted would be -1) and orientation.
    assert h.correlation(pixels, reference) > 0.999


RENDITIONS = {
    "8-bit MONOCHROME2": h.mono2_8bit,
    "12-bit MONOCHROME1 windowed": h.mono1_12bit_windowed,
    "signed 16-bit rescaled and windowed": h.signed_16bit_rescaled,
    "10-bit no window": h.ten_bit_plain,
    "RLE": lambda v: h.compressed(v, RLELossless),
    "JPEG-LS": lambda v: h.compressed(v, JPEGLSLossless),
    "JPEG 2000": lambda v: h.compressed(v, JPEG2000Lossless),
    "multi-frame": h.multi_frame,
}


@pytest.mark.parametrize("name", RENDITIONS)
def test_rendition_shows_source_picture(name, v, tmp_path):
    path = h.save(RENDITIONS[name](v), tmp_path / "image.dcm")
    assert_same_picture(load_image(path), v)


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit VR", "explicit VR"])
def test_bare_dataset_without_preamble_or_extension(implicit, v, tmp_path):
    path = h.save(h.mono2_8bit(v), tmp_path / "IMG0001", preamble=False, implicit=implicit)
    assert path.read_bytes()[128:132] != b"DICM"
    image = load_image(path)
    assert_same_picture(image, v)
    expected = "Implicit VR Little Endian" if implicit else "Explicit VR Little Endian"
    assert image.meta["TransferSyntax"] == expected


def test_eight_bit_maps_stored_values_directly(v, tmp_path):
    image = load_image(h.save(h.mono2_8bit(v), tmp_path / "a.dcm"))
    np.testing.assert_allclose(image.pixels, v / 255.0, atol=1e-6)


def test_monochrome1_uses_first_window_and_is_inverted(v, tmp_path):
    # stored x = 4095 - 16v, window 2048/4096 -> x/4095, inverted -> 16v/4095.
    # The second window (300/100) would saturate almost everything.
    image = load_image(h.save(h.mono1_12bit_windowed(v), tmp_path / "a.dcm"))
    np.testing.assert_allclose(image.pixels, 16.0 * v / 4095.0, atol=1e-5)


def test_signed_rescale_then_window(v, tmp_path):
    # (4v - 1000) * 0.25 + 250 = v; window 128/256 maps v to v/255 exactly.
    image = load_image(h.save(h.signed_16bit_rescaled(v), tmp_path / "a.dcm"))
    np.testing.assert_allclose(image.pixels, v / 255.0, atol=1e-5)


def test_without_window_the_full_stored_range_is_shown(v, tmp_path):
    # 10 bits stored: [0, 1023] maps to [0, 1]; the data's own max is not stretched.
    image = load_image(h.save(h.ten_bit_plain(v), tmp_path / "a.dcm"))
    np.testing.assert_allclose(image.pixels, 4.0 * v / 1023.0, atol=1e-6)


def test_unusable_window_falls_back_to_stored_range(v, tmp_path):
    ds = h.mono2_8bit(v)
    ds.WindowCenter, ds.WindowWidth = 128, 0  # LINEAR needs width >= 1
    image = load_image(h.save(ds, tmp_path / "a.dcm"))
    np.testing.assert_allclose(image.pixels, v / 255.0, atol=1e-6)


def test_voi_lut_sequence_is_preferred_over_window(v, tmp_path):
    ds = h.mono2_8bit(v)
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [256, 0, 12])
    item.add_new("LUTData", "US", [i * 16 for i in range(256)])  # identity into 12 bits
    ds.VOILUTSequence = [item]
    ds.WindowCenter, ds.WindowWidth = 10, 2  # would saturate if used
    image = load_image(h.save(ds, tmp_path / "a.dcm"))
    np.testing.assert_allclose(image.pixels, v / 255.0, atol=1e-6)


def test_multi_frame_uses_first_frame_and_says_so(v, tmp_path):
    image = load_image(h.save(h.multi_frame(v), tmp_path / "a.dcm"))
    assert image.meta["NumberOfFrames"] == 3
    assert "frame 1 of 3" in image.meta["note"]
    assert image.meta["frame"] == 0 and image.meta["frame_count"] == 3
    np.testing.assert_allclose(image.pixels, v / 255.0, atol=1e-6)


def test_rgb_is_converted_to_grey(tmp_path):
    bgr = h.read_bgr(h.small_source())
    image = load_image(h.save(h.rgb(bgr), tmp_path / "a.dcm"))
    assert_same_picture(image, h.read_grey(h.small_source()))


def test_jpeg_baseline_encapsulated(v, tmp_path):
    ds, reference = h.jpeg_baseline(v)
    image = load_image(h.save(ds, tmp_path / "a.dcm"))
    assert_same_picture(image, reference)
    assert image.meta["TransferSyntax"] == "JPEG Baseline (Process 1)"


def test_meta_is_display_safe_json(v, tmp_path):
    image = load_image(h.save(h.compressed(v, RLELossless), tmp_path / "a.dcm"))
    assert image.meta == {
        "Modality": "DX", "BodyPartExamined": "CHEST", "ViewPosition": "PA",
        "StudyDate": "20240131", "PatientID": "ANON-0001", "Rows": 224, "Columns": 224,
        "BitsStored": 12, "PhotometricInterpretation": "MONOCHROME2",
        "NumberOfFrames": 1, "TransferSyntax": "RLE Lossless",
        "SOPClassUID": "1.2.840.10008.5.1.4.1.1.1.1",  # DX for presentation: read by the scope check
    }
    json.dumps(image.meta)


def test_max_side_applies_to_dicom(tmp_path):
    v = h.read_grey(h.large_source())
    image = load_image(h.save(h.mono2_8bit(v), tmp_path / "a.dcm"), max_side=300)
    assert max(image.pixels.shape) == 300


# --- pydicom's own files: every other syntax decodes to the same picture ------

@pytest.mark.parametrize("name", [
    "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm",
    "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
])
def test_pydicom_mr_variants_match_uncompressed(name):
    reference = load_image(get_testdata_file("MR_small.dcm")).pixels
    np.testing.assert_allclose(load_image(get_testdata_file(name)).pixels, reference, atol=1e-6)


@pytest.mark.parametrize("name", [
    "SC_rgb_jpeg_gdcm.dcm",           # JPEG lossless, process 14 SV1
    "SC_rgb_dcmtk_+eb+cy+s2.dcm",     # JPEG baseline, YBR_FULL_422
    "SC_rgb_jpeg_dcmtk.dcm",          # JPEG baseline, YBR_FULL
    "SC_rgb_gdcm_KY.dcm",             # JPEG 2000
    "SC_rgb_rle_2frame.dcm",          # multi-frame RLE colour
])
def test_pydicom_colour_variants_match_rle_reference(name):
    reference = load_image(get_testdata_file("SC_rgb_rle.dcm")).pixels
    assert h.correlation(load_image(get_testdata_file(name)).pixels, reference) > 0.999


def test_jpeg_extended_12_bit_decodes():
    image = load_image(get_testdata_file("JPGExtended.dcm"))
    assert image.pixels.shape == (1024, 256)
    assert image.meta["TransferSyntax"] == "JPEG Extended (Process 2 and 4)"


# --- refusals ----------------------------------------------------------------

def load_error(path) -> str:
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert info.value.path == str(path)
    return info.value.message


def test_structured_report_has_no_pixels(tmp_path):
    ds = h.new_dataset()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = BasicTextSRStorage
    ds.Modality = "SR"
    assert load_error(h.save(ds, tmp_path / "report.dcm")) == "DICOM structured report: no pixel data"


def test_undecodable_syntax_is_named(v, tmp_path):
    ds, _ = h.jpeg_baseline(v)
    ds.file_meta.TransferSyntaxUID = MPEG2MPML
    message = load_error(h.save(ds, tmp_path / "video.dcm"))
    assert message == "compressed DICOM in MPEG2 Main Profile / Main Level cannot be decoded"


def test_damaged_compressed_data_is_named(v, tmp_path):
    ds = h.compressed(v, JPEGLSLossless)
    ds.PixelData = encapsulate([bytes(range(256)) * 8])
    message = load_error(h.save(ds, tmp_path / "broken.dcm"))
    assert message.startswith("compressed DICOM in JPEG-LS Lossless Image Compression cannot be decoded")


def test_truncated_dicom(v, tmp_path):
    path = h.save(h.mono2_8bit(v), tmp_path / "a.dcm")
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 6 // 10])
    load_error(path)


def test_text_named_dcm_is_not_an_image(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("Patient seen on Monday, chest X-ray to follow.\n")
    assert load_error(path) == "not an image file"
