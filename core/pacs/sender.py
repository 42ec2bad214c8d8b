"""C-STORE SCU: send DICOM files to a node over one association."""
from __future__ import annotations

from pathlib import Path

import pydicom
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from core.pacs.nodes import Node

CONNECT_TIMEOUT_S = 10
DIMSE_TIMEOUT_S = 60


class SendError(Exception):
    """The node could not be reached or refused the association (readable message)."""


def send_files(node: Node, calling_ae_title: str, files: list[Path]) -> dict[Path, str | None]:
    """Send each file; returns path -> None when stored, else the reason it was not.

    Raises SendError when no association could be made (node down, refused):
    then nothing was sent and everything should be retried later.
    """
    from pynetdicom import AE

    outcome: dict[Path, str | None] = {}
    datasets = {}
    for path in map(Path, files):
        try:
            datasets[path] = pydicom.dcmread(str(path))
        except (OSError, pydicom.errors.InvalidDicomError) as exc:
            outcome[path] = f"cannot read {path.name}: {exc}"
    if not datasets:
        return outcome
    ae = AE(ae_title=calling_ae_title)
    ae.connection_timeout = CONNECT_TIMEOUT_S
    ae.acse_timeout = CONNECT_TIMEOUT_S
    ae.dimse_timeout = DIMSE_TIMEOUT_S
    for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets.values()}):
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title)
    if not assoc.is_established:
        reason = "association rejected" if assoc.is_rejected else "no answer (node down or unreachable)"
        raise SendError(f"cannot send to {node}: {reason}")
    try:
        for path, ds in datasets.items():
            outcome[path] = _store(assoc, ds)
            if not assoc.is_established:
                break
    finally:
        if assoc.is_established:
            assoc.release()
    for path in datasets:
        outcome.setdefault(path, "association ended before this file was sent")
    return outcome


def _store(assoc, ds) -> str | None:
    try:
        status = assoc.send_c_store(ds)
    except Exception as exc:  # a bad file or a context the node did not accept
        return f"not sent: {exc}"
    if not status or "Status" not in status:
        return "no response from the node (timeout or aborted)"
    code = int(status.Status)
    if code == 0x0000 or 0xB000 <= code <= 0xBFFF:  # success, or stored with a warning
        return None
    return f"refused by the node (status 0x{code:04X})"
