"""A throw-away Orthanc PACS on loopback ports for the tests (Debian package `orthanc`)."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ORTHANC_AET = "ORTHANC"
ORTHANC_BINARY = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
NOT_INSTALLED = ("Orthanc is not installed (Debian: apt-get install -y orthanc dcmtk, or run `make test` as root, "
                 "which installs it)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Orthanc:
    """Start/stop an Orthanc process; the storage folder outlives restarts."""

    def __init__(self, folder: Path, allowed: dict[str, tuple[str, int]]):
        self.folder = Path(folder)
        self.dicom_port, self.http_port = free_port(), free_port()
        self.process: subprocess.Popen | None = None
        storage = self.folder / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "pneumoscan-test", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "DicomAet": ORTHANC_AET, "DicomPort": self.dicom_port, "HttpPort": self.http_port,
            "RemoteAccessAllowed": False, "AuthenticationEnabled": False, "SslEnabled": False,
            "DicomServerEnabled": True, "HttpServerEnabled": True, "Plugins": [],
            "DicomModalities": {name.lower(): [name, host, port] for name, (host, port) in allowed.items()},
            "DicomAlwaysAllowStore": False, "DicomCheckModalityHost": True, "StorageCompression": False,
        }
        self.config_path = self.folder / "orthanc.json"
        self.config_path.write_text(json.dumps(config, indent=1))
        self.log_path = self.folder / "orthanc.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 30.0) -> "Orthanc":
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([ORTHANC_BINARY, str(self.config_path)], stdout=log, stderr=log,
                                        cwd=self.folder)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start-up; log:\n{self.log_path.read_text()[-3000:]}")
            try:
                self.get("/system")
                if _port_open(self.dicom_port):
                    return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Orthanc did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def get(self, route: str) -> bytes:
        with urllib.request.urlopen(self.base_url + route, timeout=10) as response:
            return response.read()

    def get_json(self, route: str):
        return json.loads(self.get(route))

    def instances(self) -> list[dict]:
        """Every stored instance's main tags (SOPClassUID, StudyInstanceUID, ...) plus its id."""
        found = []
        for instance_id in self.get_json("/instances"):
            tags = self.get_json(f"/instances/{instance_id}/simplified-tags")
            tags["_id"] = instance_id
            found.append(tags)
        return found

    def file(self, instance_id: str) -> bytes:
        return self.get(f"/instances/{instance_id}/file")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def require_orthanc() -> None:
    if ORTHANC_BINARY is None:
        pytest.skip(NOT_INSTALLED)


def wait_for(predicate, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
