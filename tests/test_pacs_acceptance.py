"""Acceptance: a `pneumoscan-cli listen` process gets chest X-rays from dcmtk's storescu,
and a loopback Orthanc then holds one SR and one secondary capture per image."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from chest_films import FULLRES
from orthanc_server import ORTHANC_AET, Orthanc, free_port, require_orthanc, wait_for
from pacs_fixtures import MODALITY_AET, NODE_AET, tiny_model_entry  # noqa: F401
from pacs_helpers import from_image, make_dataset, write_dataset
from test_pacs_orthanc import count_results

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def chest_xrays(folder: Path, count: int) -> list[Path]:
    """Real chest X-rays wrapped as DX files when the shared sample is here, else synthetic ones."""
    study = generate_uid()
    images = sorted(FULLRES.glob("*/*.jpeg"))[:count] if FULLRES.is_dir() else []
    datasets = ([from_image(path, study, i + 1) for i, path in enumerate(images)]
                or [make_dataset(study, seed=i, rows=512, cols=480, instance=i + 1) for i in range(count)])
    return [write_dataset(ds, folder / f"image_{i}.dcm") for i, ds in enumerate(datasets)]


def test_listen_receives_from_storescu_and_orthanc_holds_the_results(tmp_path, tiny_model_entry):  # noqa: F811
    require_orthanc()
    if not shutil.which("storescu") or not shutil.which("echoscu"):
        pytest.skip("dcmtk is not installed (Debian: apt-get install -y dcmtk, or `make test` as root)")
    orthanc = Orthanc(tmp_path / "orthanc", {NODE_AET: ("127.0.0.1", 104)}).start()
    port = free_port()
    env = dict(os.environ, PNEUMOSCAN_HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO))
    log = (tmp_path / "listen.log").open("wb")
    listen = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "listen", "--port", str(port), "--ae-title", NODE_AET,
         "--inbox", str(tmp_path / "inbox"), "--model", str(tiny_model_entry.keras_path),
         "--send-results-to", f"{ORTHANC_AET}@127.0.0.1:{orthanc.dicom_port}", "--allow-calling", MODALITY_AET,
         "--min-free-mb", "0"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: b"listening as" in (tmp_path / "listen.log").read_bytes()
                        or listen.poll() is not None, timeout=120)
        assert listen.poll() is None, (tmp_path / "listen.log").read_text()
        files = chest_xrays(tmp_path / "modality", 3)
        if shutil.which("img2dcm") and FULLRES.is_dir():  # a JPEG-compressed secondary capture, as converters make
            converted = tmp_path / "modality" / "converted.dcm"
            source = sorted(FULLRES.glob("*/*.jpeg"))[-1]
            subprocess.run(["img2dcm", str(source), str(converted)], check=True, capture_output=True, timeout=60)
            files.append(converted)
        echo = subprocess.run(["echoscu", "-aet", MODALITY_AET, "-aec", NODE_AET, "127.0.0.1", str(port)],
                              capture_output=True, text=True, timeout=30)
        assert echo.returncode == 0, echo.stderr
        # Called AE title left at storescu's default; -xy proposes JPEG 8-bit for the converted file.
        for batch, extra in ((files[:3], []), (files[3:], ["-xy"])):
            if batch:
                sent = subprocess.run(["storescu", "-aet", MODALITY_AET, *extra, "127.0.0.1", str(port),
                                       *map(str, batch)], capture_output=True, text=True, timeout=120)
                assert sent.returncode == 0, sent.stderr
        started = time.monotonic()
        expected = (len(files), len(files))
        assert wait_for(lambda: count_results(orthanc) == expected, timeout=120), (
            count_results(orthanc), (tmp_path / "listen.log").read_text()[-3000:])
        print(f"results in Orthanc {time.monotonic() - started:.1f} s after storescu finished")
    finally:
        listen.send_signal(signal.SIGTERM)
        try:
            code = listen.wait(60)
        except subprocess.TimeoutExpired:
            listen.kill()
            code = None
        orthanc.stop()
    assert code == 0, (tmp_path / "listen.log").read_text()[-3000:]
    assert len(list((tmp_path / "inbox").glob("*/*.dcm"))) == len(files)
