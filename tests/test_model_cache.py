"""Issue 18: one model cache shared by study open, fine map, PACS adapter and the wizard
(core.models.cache): a model is loaded once per file identity, also under concurrency."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from core.models.cache import ModelCache


class Entry:
    """What the cache reads from a registry entry: the file and the card's hash."""

    def __init__(self, path: Path, sha256: str = "a" * 64):
        self.keras_path, self.card = path, type("Card", (), {"sha256": sha256})()


@pytest.fixture
def entry(tmp_path):
    path = tmp_path / "m-v1.keras"
    path.write_bytes(b"weights")
    return Entry(path)


def counting_loader(delay: float = 0.0):
    calls = []

    def load(entry, scope):
        calls.append((entry.keras_path, scope))
        time.sleep(delay)  # long enough for the other threads to ask meanwhile
        return object()
    return load, calls


def test_the_same_model_is_loaded_once(entry, monkeypatch):
    monkeypatch.setattr("core.models.registry.ModelEntry", Entry)
    load, calls = counting_loader()
    cache = ModelCache(loader=load)
    assert cache.get(entry) is cache.get(entry)
    assert len(calls) == 1 and cache.loads == 1


def test_concurrent_callers_share_one_load(entry, monkeypatch):
    monkeypatch.setattr("core.models.registry.ModelEntry", Entry)
    load, calls = counting_loader(delay=0.3)
    cache = ModelCache(loader=load)
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(entry))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(calls) == 1 and len(got) == 6 and all(model is got[0] for model in got)


def test_a_file_replaced_in_place_is_loaded_again_and_the_old_copy_dropped(entry, monkeypatch):
    monkeypatch.setattr("core.models.registry.ModelEntry", Entry)
    load, calls = counting_loader()
    cache = ModelCache(loader=load)
    first = cache.get(entry)
    entry.keras_path.write_bytes(b"other weights, longer")
    second = cache.get(entry)
    assert second is not first and len(calls) == 2 and len(cache) == 1


def test_a_failed_load_is_not_cached_and_least_used_models_go(tmp_path, monkeypatch):
    monkeypatch.setattr("core.models.registry.ModelEntry", Entry)
    failures = [RuntimeError("disk hiccup")]

    def load(entry, scope):
        if failures:
            raise failures.pop()
        return object()

    cache = ModelCache(max_models=2, loader=load)
    entries = []
    for i in range(3):
        path = tmp_path / f"m{i}.keras"
        path.write_bytes(b"w" * (i + 1))
        entries.append(Entry(path, sha256=str(i) * 64))
    with pytest.raises(RuntimeError):
        cache.get(entries[0])
    for e in entries:
        cache.get(e)
    assert len(cache) == 2 and cache.loads == 3
