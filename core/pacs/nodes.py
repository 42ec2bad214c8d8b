"""DICOM identifiers that reach the file system or the network: UIDs, AE titles, nodes."""
from __future__ import annotations

import re
from dataclasses import dataclass

# PS3.5 9.1: digits and dots, components non-empty, at most 64 characters.
# Leading zeros are tolerated (old modalities emit them); nothing else is, so a
# valid UID can never be "..", contain a separator or be empty.
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")
_UID_MAX = 64
# PS3.5 6.2 (AE): up to 16 characters of the default repertoire, no backslash or controls.
_AE_TITLE = re.compile(r"[\x20-\x5b\x5d-\x7e]{1,16}")


class InvalidIdentifier(ValueError):
    """A UID, AE title or node address that is not acceptable (readable message)."""


def check_uid(value, what: str = "UID") -> str:
    """The UID as a str, or InvalidIdentifier saying why it is refused."""
    text = str(value if value is not None else "").strip("\x00 ")
    if not text:
        raise InvalidIdentifier(f"{what} is missing")
    if len(text) > _UID_MAX or not _UID.fullmatch(text):
        shown = text[:80].encode("unicode_escape").decode("ascii")
        raise InvalidIdentifier(f"{what} {shown!r} is not a valid DICOM UID (digits and dots, at most 64)")
    return text


def check_ae_title(value: str, what: str = "AE title") -> str:
    text = str(value).strip()
    if not _AE_TITLE.fullmatch(text):
        raise InvalidIdentifier(f"{what} {value!r} is not valid: 1-16 printable ASCII characters, no backslash")
    return text


@dataclass(frozen=True)
class Node:
    """A remote DICOM node: AE title, host, port."""
    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_node(text: str) -> Node:
    """'AET@HOST:PORT' -> Node (IPv6 hosts in brackets: AET@[::1]:104)."""
    aet, at, address = str(text).rpartition("@")
    host, colon, port = address.rpartition(":")
    if not at or not colon or not host:
        raise InvalidIdentifier(f"{text!r} is not AET@HOST:PORT (e.g. ORTHANC@127.0.0.1:4242)")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        port_number = int(port)
    except ValueError:
        port_number = 0
    if not 1 <= port_number <= 65535:
        raise InvalidIdentifier(f"port {port!r} in {text!r} is not a number from 1 to 65535")
    return Node(check_ae_title(aet, "destination AE title"), host, port_number)
