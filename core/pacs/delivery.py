"""The delivery loop: sends what the outbox holds when it is due, in a background thread."""
from __future__ import annotations

import logging
import threading
from collections import defaultdict

from core.pacs.outbox import Outbox
from core.pacs.sender import SendError, send_files

log = logging.getLogger("pneumoscan.pacs")
IDLE_POLL_S = 30.0  # re-check even when nothing was added (clock changes, another writer)
PASS_LIMIT = 32  # objects per delivery pass (a secondary capture is ~3 MB in memory)


class DeliveryWorker:
    def __init__(self, outbox: Outbox, calling_ae_title: str):
        self.outbox = outbox
        self.calling_ae_title = calling_ae_title
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pneumoscan-delivery", daemon=True)

    def start(self) -> "DeliveryWorker":
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after one last pass over what is due (what fails stays queued for the next start)."""
        self._stop.set()
        self.outbox.changed.set()
        self._thread.join(timeout)

    def deliver_due(self) -> int:
        """Send every due item once; returns how many were stored by their destination."""
        sent = 0
        by_node = defaultdict(list)
        for item in self.outbox.due(limit=PASS_LIMIT):
            by_node[item.destination].append(item)
        for node, items in by_node.items():
            try:
                outcome = send_files(node, self.calling_ae_title, [item.file for item in items])
            except SendError as exc:
                for item in items:
                    delay = self.outbox.mark_failed(item, str(exc))
                log.warning("%s; %d result object(s) wait in the outbox, next try in %.0f s", exc, len(items), delay)
                continue
            except Exception as exc:  # e.g. a queued file went missing: keep the loop alive
                for item in items:
                    self.outbox.mark_failed(item, f"{type(exc).__name__}: {exc}")
                log.exception("delivery to %s failed", node)
                continue
            for item in items:
                error = outcome.get(item.file)
                if error is None:
                    self.outbox.mark_sent(item)
                    sent += 1
                else:  # the node answered and refused it: retried a few times, then given up
                    delay = self.outbox.mark_failed(item, error, refused=True)
                    log.warning("%s to %s refused: %s%s", item.description or item.key, node, error,
                                "; given up (the Inbox shows it)" if delay == float("inf") else "")
        if sent:
            log.info("sent %d result object(s)", sent)
        return sent

    def _run(self) -> None:
        while True:
            self.outbox.changed.clear()
            try:
                while self.deliver_due() == PASS_LIMIT:  # a full pass: more may be due at once
                    pass
            except Exception:  # never let one bad pass end delivery
                log.exception("delivery pass failed")
            if self._stop.is_set():
                return
            wait = self.outbox.next_due_in()
            self.outbox.changed.wait(IDLE_POLL_S if wait is None else min(max(wait, 0.05), IDLE_POLL_S))
