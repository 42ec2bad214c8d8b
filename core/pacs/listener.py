"""The DICOM C-STORE / C-ECHO service provider (pynetdicom).

Accepts chest radiograph storage classes in the common transfer syntaxes
(compressed ones are stored as received, never re-encoded), refuses calling AE
titles outside the allow-list (when one is set), and hands every file it stored to `on_stored` (which must return
quickly: screening runs elsewhere). C-STORE statuses follow PS3.4 B.2.3:
0xA700 out of resources (too large, disk nearly full), 0xC000 cannot
understand (bad or missing UIDs).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info

from core.pacs.inbox import Inbox, InboxRefusal, StoredFile, size_text
from core.pacs.nodes import InvalidIdentifier, check_ae_title

log = logging.getLogger("pneumoscan.pacs")

DEFAULT_BIND = "127.0.0.1"
DRAIN_TIMEOUT_S = 60.0  # how long a stop waits for transfers in progress
# A file is refused (A700) when complete; one that streams this far past the
# limit is cut off mid-transfer (association aborted), so it never fills memory.
STREAM_SLACK_BYTES = 1024 ** 2

STORAGE_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1": "Computed Radiography Image Storage",
    "1.2.840.10008.5.1.4.1.1.1.1": "Digital X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.1.1.1": "Digital X-Ray Image Storage - For Processing",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    # What film digitisers and img2dcm-style converters send.
    "1.2.840.10008.5.1.4.1.1.7.1": "Multi-frame Single Bit Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.2": "Multi-frame Grayscale Byte Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.3": "Multi-frame Grayscale Word Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.7.4": "Multi-frame True Color Secondary Capture Image Storage",
}
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (12-bit)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K Lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE Lossless
]
VERIFICATION = "1.2.840.10008.1.1"

STATUS_SUCCESS = 0x0000
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_CANNOT_UNDERSTAND = 0xC000


@dataclass
class ListenerConfig:
    port: int
    ae_title: str
    bind: str = DEFAULT_BIND
    allow_calling: list[str] = field(default_factory=list)  # empty: any calling AE

    def __post_init__(self):
        self.ae_title = check_ae_title(self.ae_title)
        self.allow_calling = [check_ae_title(aet, "allowed calling AE title") for aet in self.allow_calling]
        if not 0 <= int(self.port) <= 65535:  # 0: any free port (tests)
            raise InvalidIdentifier(f"port {self.port} is not a number from 1 to 65535")


class StoreListener:
    def __init__(self, config: ListenerConfig, inbox: Inbox, on_stored: Callable[[StoredFile, str], None]):
        self.config = config
        self.inbox = inbox
        self.on_stored = on_stored
        self._server = None
        self._lock = threading.Lock()
        self._streamed: dict[int, int] = {}  # association id -> bytes received since its last request

    @property
    def port(self) -> int:
        """The port actually listened on (differs from the config's when it asked for 0)."""
        return self._server.server_address[1] if self._server else self.config.port

    def start(self) -> None:
        """Open the port (OSError, e.g. 'address in use', when it cannot)."""
        from pynetdicom import AE, evt

        ae = AE(ae_title=self.config.ae_title)
        # Like Orthanc's default, any called AE title is accepted (storescu says ANY-SCP
        # unless told otherwise); who may send is the calling-AE allow-list's job.
        ae.require_called_aet = False
        ae.require_calling_aet = list(self.config.allow_calling)
        ae.maximum_associations = 8
        ae.network_timeout = 60
        ae.add_supported_context(VERIFICATION)
        for sop_class in STORAGE_CLASSES:
            ae.add_supported_context(sop_class, TRANSFER_SYNTAXES)
        handlers = [(evt.EVT_C_STORE, self._handle_store), (evt.EVT_C_ECHO, self._handle_echo),
                    (evt.EVT_REJECTED, self._handle_rejected), (evt.EVT_DATA_RECV, self._handle_data),
                    (evt.EVT_CONN_CLOSE, self._forget)]
        self._server = ae.start_server((self.config.bind, int(self.config.port)), block=False,
                                       evt_handlers=handlers)
        log.info("listening as %s on %s:%d", self.config.ae_title, self.config.bind, self.port)

    def stop(self, drain_timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Stop accepting associations, then let the transfers in progress finish."""
        if self._server is None:
            return
        server, self._server = self._server, None
        server.shutdown()  # no new associations; those already open keep their threads
        active = server.active_associations
        deadline = time.monotonic() + drain_timeout
        for assoc in active:
            assoc.join(max(0.0, deadline - time.monotonic()))
            if assoc.is_alive():
                log.warning("association from %s still open after %.0f s: aborted", _calling(assoc), drain_timeout)
                assoc.abort()

    # -- handlers (run in pynetdicom's association threads) -----------------

    def _handle_data(self, event) -> None:
        """Count what an association streams; cut it off once far past the size limit."""
        key = id(event.assoc)
        with self._lock:
            total = self._streamed.get(key, 0) + len(event.data)
            self._streamed[key] = total
            cut_off = total > self.inbox.max_file_bytes + STREAM_SLACK_BYTES >= total - len(event.data)
        if cut_off:
            log.warning("association from %s aborted: a file streamed past the %s limit",
                        _calling(event.assoc), size_text(self.inbox.max_file_bytes))
            # Not from this (the association's own) thread: abort waits for it.
            threading.Thread(target=event.assoc.abort, name="pneumoscan-abort", daemon=True).start()

    def _forget(self, event) -> None:
        with self._lock:
            self._streamed.pop(id(event.assoc), None)

    def _request_done(self, event) -> None:
        with self._lock:
            self._streamed[id(event.assoc)] = 0

    def _handle_echo(self, event) -> int:
        self._request_done(event)
        log.info("C-ECHO from %s", _calling(event.assoc))
        return STATUS_SUCCESS

    def _handle_rejected(self, event) -> None:
        calling = _calling(event.assoc)
        allowed = self.config.allow_calling
        why = ("calling AE title not in the allow-list" if allowed and calling not in allowed
               else "too many associations at once, or nothing it proposed is accepted here")
        address = getattr(event.assoc.requestor, "address", "?")
        log.warning("association from %s (%s) rejected: %s", calling, address, why)

    def _handle_store(self, event):
        self._request_done(event)
        calling = _calling(event.assoc)
        raw = event.request.DataSet.getvalue()
        try:
            self.inbox.check_room(len(raw))
            ds = event.dataset
            study_uid, sop_uid = ds.get("StudyInstanceUID"), ds.get("SOPInstanceUID")
            if str(sop_uid) != str(event.request.AffectedSOPInstanceUID):
                raise InvalidIdentifier("SOPInstanceUID differs from the one in the C-STORE request")
            self.inbox.path_for(study_uid, sop_uid)  # validates both before anything is written
            stored = self.inbox.write(study_uid, sop_uid, (b"\x00" * 128, b"DICM", _meta_bytes(event), raw))
        except InboxRefusal as exc:
            log.warning("refused a file from %s: %s", calling, exc)
            return _failure(STATUS_OUT_OF_RESOURCES, exc)
        except InvalidIdentifier as exc:
            log.warning("refused a file from %s: %s", calling, exc)
            return _failure(STATUS_CANNOT_UNDERSTAND, exc)
        except Exception as exc:  # undecodable data set, disk error: refuse it, keep serving
            log.warning("refused a file from %s: %s: %s", calling, type(exc).__name__, exc)
            return _failure(STATUS_OUT_OF_RESOURCES if isinstance(exc, OSError) else STATUS_CANNOT_UNDERSTAND, exc)
        log.info("received %s (study %s) from %s", stored.sop_uid, stored.study_uid, calling)
        try:
            self.on_stored(stored, calling)
        except Exception:  # the file is safe on disk; a restart screens it
            log.exception("could not queue %s for screening", stored.path)
        return STATUS_SUCCESS


def _meta_bytes(event) -> bytes:
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, event.file_meta, enforce_standard=True)
    return buffer.getvalue()


def _failure(code: int, exc: Exception):
    from pydicom import Dataset

    status = Dataset()
    status.Status = code
    status.ErrorComment = str(exc)[:64]
    return status


def _calling(assoc) -> str:
    try:
        return str(assoc.requestor.ae_title).strip()
    except AttributeError:
        return "?"
