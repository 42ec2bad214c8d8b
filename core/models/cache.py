"""One cache of loaded models, shared by everything that screens with the same model.

Opening a study, the PACS listener's adapter and the wizard's comparison
all ask for "model X": loaded once, each `.keras` costs its weights in memory and a
second or more to load. `cached_model(entry_or_name)` returns the same LoadedModel to
every caller while the file is unchanged.

Key: the model file's resolved path and identity (size, mtime), the card's sha256 and
whether the scope detector was asked for; a file replaced in place (same name, new
bytes) is a new key, never a stale model. Thread-safe: concurrent callers of one key wait
for a single load (a per-key lock); other keys load in parallel. At most MAX_MODELS stay
loaded (least recently used goes). A failed load is not cached: the next call tries again.

A LoadedModel is shared: callers must not change its Keras model (predict only).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

MAX_MODELS = 3


def _identity(entry, scope: bool) -> tuple:
    path = Path(entry.keras_path)
    try:
        stat = path.stat()
        file_id = (stat.st_size, stat.st_mtime_ns)
    except OSError:
        file_id = (None, None)  # load_model says why it cannot be read
    return (str(path.resolve()), *file_id, entry.card.sha256, bool(scope))


class ModelCache:
    def __init__(self, max_models: int = MAX_MODELS, loader=None):
        self.max_models = max_models
        self._loader = loader
        self._models: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()  # guards the two dicts, never held while loading
        self._loading: dict[tuple, threading.Lock] = {}
        self.loads = 0  # how many times a model was really loaded (tests, logs)

    def _load(self, entry, scope: bool):
        if self._loader is not None:
            return self._loader(entry, scope)
        from core.models.registry import load_model

        return load_model(entry, scope=scope)

    def get(self, name_or_entry=None, scope: bool = True):
        """The LoadedModel of a ModelEntry, a name/label or None (the default model)."""
        from core.models.registry import ModelEntry, find_model

        entry = name_or_entry if isinstance(name_or_entry, ModelEntry) else find_model(name_or_entry)
        key = _identity(entry, scope)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # one load per key; later callers find it cached
            with self._lock:
                if key in self._models:
                    self._models.move_to_end(key)
                    return self._models[key]
            try:
                loaded = self._load(entry, scope)
            finally:
                with self._lock:
                    self._loading.pop(key, None)
            with self._lock:
                self.loads += 1
                self._models[key] = loaded
                self._forget_replaced(key)
                while len(self._models) > self.max_models:
                    self._models.popitem(last=False)
            return loaded

    def _forget_replaced(self, key: tuple) -> None:
        """Older versions of the same file (replaced in place) are never asked for again."""
        for other in [k for k in self._models if k[0] == key[0] and k[4] == key[4] and k != key]:
            del self._models[other]

    def clear(self) -> None:
        with self._lock:
            self._models.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._models)


_shared = ModelCache()


def shared_cache() -> ModelCache:
    return _shared


def cached_model(name_or_entry=None, scope: bool = True):
    """The shared cache's LoadedModel (see the module docstring)."""
    return _shared.get(name_or_entry, scope)
