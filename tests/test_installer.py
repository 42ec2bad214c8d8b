"""The double-click installer: PyInstaller bundle, its smoke test, and the Linux pack.

The `installer` tests build the whole bundle once (about 6 minutes on a
2-core machine) and run `PneumoScan --smoke-test` from it: the bundled model
must screen the bundled sample study. The pack/launcher tests use a stand-in
bundle and take a second.

Environment knobs: PNEUMOSCAN_BUNDLE_MODELS=DIR bundles DIR's models instead
of models/ (read by build_installer.spec); PNEUMOSCAN_INSTALLER_BUNDLE=PATH
tests an already built bundle folder instead of building one.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "build_installer.spec"
PACK = REPO / "packaging" / "linux" / "pack.sh"
BUILD_TIMEOUT_S = 40 * 60
SMOKE_TIMEOUT_S = 10 * 60
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
EXE_NAME = "PneumoScan.exe" if sys.platform == "win32" else "PneumoScan"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux packaging")


def _shipped_models() -> list[Path]:
    """What the spec bundles: models/, or $PNEUMOSCAN_BUNDLE_MODELS for a test build."""
    folder = Path(os.environ.get("PNEUMOSCAN_BUNDLE_MODELS") or REPO / "models")
    return sorted(p for p in folder.glob("*.keras") if p.with_suffix(".json").is_file())


def _sample_images() -> int:
    from core.imaging.discovery import discover
    from core.paths import sample_study_dir

    return len(discover(sample_study_dir()))


def _smoke_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(QT_QPA_PLATFORM="offscreen", PNEUMOSCAN_HOME=str(home), PNEUMOSCAN_NO_FIRST_RUN="1",
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES=env.get("CUDA_VISIBLE_DEVICES", ""))
    return env


def _last_json_line(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON line in the smoke-test output:\n{stdout[-2000:]}")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    prebuilt = os.environ.get("PNEUMOSCAN_INSTALLER_BUNDLE")
    if prebuilt:  # test an already built dist/PneumoScan instead of building one
        folder = Path(prebuilt)
        assert (folder / EXE_NAME).is_file(), f"PNEUMOSCAN_INSTALLER_BUNDLE: no {EXE_NAME} in {folder}"
        yield folder
        return
    if importlib.util.find_spec("PyInstaller") is None:
        pytest.skip("PyInstaller is not installed (pip install -e '.[dev]')")
    if not _shipped_models():
        pytest.fail("no shipped model (models/*.keras with its .json card): the bundle could not "
                    "screen; commit the trained models before building the installer")
    work = tmp_path_factory.mktemp("pyinstaller")
    command = [sys.executable, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
               "--distpath", str(work / "dist"), "--workpath", str(work / "build"), str(SPEC)]
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"PyInstaller build took longer than {BUILD_TIMEOUT_S} s")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, f"PyInstaller failed ({elapsed:.0f} s):\n{done.stderr[-6000:]}"
    print(f"\nPyInstaller build: {elapsed:.0f} s")
    folder = work / "dist" / "PneumoScan"
    assert (folder / EXE_NAME).is_file()
    yield folder
    shutil.rmtree(work, ignore_errors=True)  # about 2 GB: don't leave it in pytest's kept temp folders


def _internal(bundle: Path) -> Path:
    return bundle / "_internal"


@pytest.mark.installer
def test_bundle_carries_models_resources_and_plugins(bundle):
    internal = _internal(bundle)
    shipped = {p.name for p in _shipped_models()}
    bundled = {p.name for p in (internal / "models").glob("*.keras")}
    assert shipped <= bundled
    # A model whose card names a scope detector must find its sidecar in the bundle.
    folder = Path(os.environ.get("PNEUMOSCAN_BUNDLE_MODELS") or REPO / "models")
    for card_path in folder.glob("*.json"):
        sidecar = json.loads(card_path.read_text(encoding="utf-8")).get("scope_detector", {}).get("file")
        if sidecar:
            assert (internal / "models" / sidecar).is_file(), f"{sidecar} missing from the bundle"
    assert (internal / "resources" / "sample_study" / "labels.csv").is_file()
    assert (internal / "resources" / "icons" / "pneumoscan.png").is_file()
    if sys.platform.startswith("linux"):
        platforms = internal / "PySide6" / "Qt" / "plugins" / "platforms"
        names = {p.name for p in platforms.iterdir()}
        assert {"libqxcb.so", "libqoffscreen.so"} <= names, names
    # pylibjpeg finds its decoders through entry points in the dist-info metadata.
    for dist in ("pylibjpeg", "pylibjpeg_libjpeg", "pylibjpeg_openjpeg", "pylibjpeg_rle", "pyjpegls"):
        infos = list(internal.glob(f"{dist}-*.dist-info"))
        assert infos, f"{dist} metadata missing from the bundle"
    assert not (internal / "tensorboard").exists()
    assert not (internal / "tensorflow" / "include").exists()


@pytest.mark.installer
def test_bundle_smoke_test_screens_the_sample_study(bundle, tmp_path):
    started = time.monotonic()
    done = subprocess.run([str(bundle / EXE_NAME), "--smoke-test"], env=_smoke_env(tmp_path / "home"),
                          capture_output=True, text=True, timeout=SMOKE_TIMEOUT_S)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, f"exit {done.returncode}\nstdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-6000:]}"
    report = _last_json_line(done.stdout)
    print(f"\nbundle smoke test ({elapsed:.1f} s): {json.dumps(report)}")
    assert set(report) >= {"window_shown_s", "screened", "errors", "device"}
    # Every sample image, the JPEG-LS DICOM included (pylibjpeg plugins in the bundle).
    assert report["screened"] == _sample_images() > 0
    assert report["errors"] == 0
    assert not (tmp_path / "home" / "results.sqlite3").exists(), "the smoke test must use a throw-away store"


@pytest.mark.installer
@linux_only
def test_bundle_smoke_test_on_a_given_folder(bundle, tmp_path):
    """A study folder given on the command line, with a name that is not ASCII."""
    from core.paths import sample_study_dir

    study = tmp_path / "études" / "PNEUMONIA"
    study.mkdir(parents=True)
    for src in sorted((sample_study_dir() / "PNEUMONIA").iterdir())[:3]:
        shutil.copy(src, study / src.name)
    done = subprocess.run([str(bundle / EXE_NAME), "--smoke-test", str(study.parent)],
                          env=_smoke_env(tmp_path / "home"), capture_output=True, text=True,
                          timeout=SMOKE_TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-4000:]
    assert _last_json_line(done.stdout)["screened"] == 3


# --- Linux tarball and launcher (stand-in bundle: fast, no PyInstaller) ------

@pytest.fixture()
def fake_dist(tmp_path) -> Path:
    dist = tmp_path / "dist"
    app = dist / "PneumoScan"
    (app / "_internal" / "lib").mkdir(parents=True)
    marker = tmp_path / "launched.txt"
    (app / "PneumoScan").write_text(f'#!/bin/sh\necho "$@" > "{marker}"\n')
    (app / "PneumoScan").chmod(0o755)
    (app / "_internal" / "lib" / "libx.so.1").write_bytes(b"\0" * 64)
    (app / "_internal" / "libx.so.1").symlink_to("lib/libx.so.1")
    return dist


@linux_only
def test_pack_makes_a_versioned_tarball(fake_dist):
    done = subprocess.run(["bash", str(PACK)], env={**os.environ, "DIST_DIR": str(fake_dist)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    name = f"PneumoScan-{VERSION}-linux-{os.uname().machine}"
    tarball = fake_dist / f"{name}.tar.gz"
    assert tarball.is_file()
    with tarfile.open(tarball) as tar:
        members = {m.name: m for m in tar.getmembers()}
    for rel in ("PneumoScan/PneumoScan", "install.sh", "pneumoscan.desktop.in", "pneumoscan.png", "README.txt"):
        assert f"{name}/{rel}" in members, rel
    assert members[f"{name}/PneumoScan/PneumoScan"].mode & 0o111
    assert members[f"{name}/install.sh"].mode & 0o111
    link = members[f"{name}/PneumoScan/_internal/libx.so.1"]
    assert link.issym() and link.linkname == "lib/libx.so.1", "the bundle's links must stay links"
    assert not list(fake_dist.glob(".pack.*")), "staging folder left behind"


@linux_only
def test_install_sh_registers_and_removes_the_launcher(fake_dist, tmp_path):
    subprocess.run(["bash", str(PACK)], env={**os.environ, "DIST_DIR": str(fake_dist)},
                   check=True, capture_output=True, timeout=120)
    unpacked = tmp_path / "my apps"
    unpacked.mkdir()
    with tarfile.open(next(fake_dist.glob("*.tar.gz"))) as tar:
        tar.extractall(unpacked, filter="tar")
    folder = next(unpacked.iterdir())
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)
    done = subprocess.run([str(folder / "install.sh"), "--desktop"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    launcher = home / ".local" / "share" / "applications" / "pneumoscan.desktop"
    entries = dict(line.split("=", 1) for line in launcher.read_text().splitlines() if "=" in line)
    executable = folder / "PneumoScan" / "PneumoScan"
    assert entries["Exec"] == f'"{executable}" %f'
    assert entries["TryExec"] == str(executable)
    assert Path(entries["Icon"]).is_file()
    assert entries["Type"] == "Application" and entries["Terminal"] == "false"
    assert "@" not in launcher.read_text()
    assert (home / "Desktop" / "pneumoscan.desktop").is_file()

    if shutil.which("gio"):  # GLib's own launcher parses Exec as a desktop would
        marker = tmp_path / "launched.txt"
        subprocess.run(["gio", "launch", str(launcher), str(tmp_path)], env=env, timeout=60, check=True)
        for _ in range(50):
            if marker.exists():
                break
            time.sleep(0.1)
        assert marker.read_text().strip() == str(tmp_path)

    done = subprocess.run([str(folder / "install.sh"), "--uninstall"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not launcher.exists()
    assert not (home / "Desktop" / "pneumoscan.desktop").exists()
