"""The CAD node: listener -> inbox -> screening -> results store -> outbox -> destination.

`PacsService` runs the pieces together for `pneumoscan-cli listen` and the
desktop app. Screening runs in one worker thread fed by a queue, so the
listener answers senders at once; results are queued for sending before
they are stored, so a crash never leaves a stored result unsent, and files
received but not yet screened are screened at the next start.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from core.pacs.inbox import DEFAULT_MAX_FILE_BYTES, DEFAULT_MIN_FREE_BYTES, Inbox, StoredFile
from core.pacs.listener import ListenerConfig, StoreListener
from core.pacs.nodes import Node
from core.pacs.outbox import Outbox

log = logging.getLogger("pneumoscan.pacs")
BATCH_SIZE = 16  # files screened together when a burst arrives


@dataclass
class ServiceConfig:
    listener: ListenerConfig
    inbox: Path
    model: str | None = None
    send_results_to: Node | None = None
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    min_free_bytes: int = DEFAULT_MIN_FREE_BYTES
    retry_base_delay: float = 5.0
    retry_max_delay: float = 600.0


class PacsService:
    """start() opens the port; stop() finishes what is in flight. `on_result(path, result)` is optional."""

    def __init__(self, config: ServiceConfig, adapter=None, store=None,
                 on_result: Callable[[Path, object], None] | None = None):
        self.config = config
        self.inbox = Inbox(config.inbox, config.max_file_bytes, config.min_free_bytes)
        self._adapter = adapter
        self._store = store
        self._own_store = store is None
        self.on_result = on_result
        self.outbox: Outbox | None = None
        self._delivery = None
        self.listener = StoreListener(config.listener, self.inbox, self._enqueue)
        self._queue: queue.Queue = queue.Queue()
        self._worker = threading.Thread(target=self._screen_loop, name="pneumoscan-screening", daemon=True)
        self.screened = 0

    @property
    def port(self) -> int:
        return self.listener.port

    @property
    def model_hash(self) -> str:
        """The screening model's SHA-256 (results are stored under it); valid after start()."""
        return self._adapter.model_hash

    def start(self) -> "PacsService":
        from core.pacs.delivery import DeliveryWorker
        from core.pacs.screening_adapter import ScreeningAdapter
        from core.reading.store import ResultStore

        if self._adapter is None:
            self._adapter = ScreeningAdapter(self.config.model)
        if self._store is None:
            self._store = ResultStore()
        if self.config.send_results_to is not None:
            self.outbox = Outbox(self.inbox.state_dir, self.config.retry_base_delay, self.config.retry_max_delay)
            self.outbox.retry_all_now()  # a restart tries what waits at once
            waiting = self.outbox.pending_count()
            if waiting:
                log.info("%d result object(s) waiting in the outbox from an earlier run", waiting)
            self._delivery = DeliveryWorker(self.outbox, self.config.listener.ae_title).start()
        self.inbox.remove_partial_files()
        self._requeue_unscreened()
        self._worker.start()
        try:
            self.listener.start()
        except BaseException:  # e.g. port in use: leave nothing running behind
            self._finish()
            raise
        return self

    def stop(self) -> None:
        """Close the port, finish transfers and screening in progress, one last delivery pass."""
        self.listener.stop()
        self._finish()
        log.info("stopped")

    def _finish(self) -> None:
        if self._worker.is_alive():
            self._queue.put(None)
            self._worker.join()
        if self._delivery is not None:
            self._delivery.stop()
            self._delivery = None
            self.outbox.close()
        if self._own_store and self._store is not None:
            self._store.close()
            self._store = None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every received file so far is screened (tests, the GUI's 'refresh')."""
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    # -- screening ------------------------------------------------------------

    def _enqueue(self, stored: StoredFile, calling_ae: str) -> None:
        self._queue.put(stored.path)

    def _requeue_unscreened(self) -> None:
        model_hash = self._adapter.model_hash
        pending = [path for path in self.inbox.files() if self._store.get_result(path, model_hash) is None]
        if pending:
            log.info("%d received file(s) not screened yet: screening them now", len(pending))
        for path in pending:
            self._queue.put(path)

    def _screen_loop(self) -> None:
        """Screen what has arrived, a batch at a time (a burst from a modality shares batches)."""
        while True:
            batch, markers, stopping = self._next_batch()
            if batch:
                try:
                    results = list(self._adapter.screen_files(batch))
                except Exception:  # the engine failed as a whole: a restart retries these files
                    log.exception("screening %d file(s) failed", len(batch))
                    results = []
                for path, result in zip(batch, results):
                    try:
                        self._process(path, result)
                    except Exception:  # e.g. the store is locked: this file is screened again at restart
                        log.exception("could not record the result of %s", path.name)
            for marker in markers:
                marker.set()
            if stopping:
                return

    def _next_batch(self) -> tuple[list[Path], list[threading.Event], bool]:
        """Block for one item, then take whatever else is already waiting (up to BATCH_SIZE files)."""
        batch, markers = [], []
        item = self._queue.get()
        while True:
            if item is None:
                return batch, markers, True
            if isinstance(item, threading.Event):
                markers.append(item)  # wait_idle: set once everything queued before it is done
                if batch:
                    return batch, markers, False
            else:
                batch.append(Path(item))
            if len(batch) >= BATCH_SIZE:
                return batch, markers, False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, markers, False

    def _process(self, path: Path, result) -> None:
        from core.pacs.results_dicom import describe

        if self.outbox is not None:
            try:
                queue_results(self.outbox, self.config.send_results_to, path, result)
            except Exception as exc:  # an odd source header: the result is still stored and shown
                log.error("results for %s could not be built as DICOM, not sent: %s: %s",
                          path.name, type(exc).__name__, exc)
        self._store.put_result(path.parent, result)
        self.screened += 1
        log.info("screened %s: %s", path.name, describe(result))
        if self.on_result is not None:
            self.on_result(path, result)


def queue_results(outbox: Outbox, node: Node, path: Path, result) -> int:
    """Queue the SR and the secondary capture of one result for a node; returns how many were new."""
    from core.pacs.results_dicom import result_objects

    return sum(outbox.add(node, obj.dataset, key=obj.key, description=f"{obj.kind} for {path.name}")
               for obj in result_objects(path, result))
