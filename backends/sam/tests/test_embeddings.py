"""The embedding cache: hits, misses, memory-bounded eviction, one computation per image."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from functools import partial

import pytest

from prelabel_sam.embeddings import EmbeddingCache, ImageKey

MB = 2**20


@dataclass(frozen=True)
class Blob:
    name: str
    nbytes: int = 4 * MB


def key(n: int, model: str = "m") -> ImageKey:
    return ImageKey.of(model, f"/data/upload/1/{n}.png", f"image {n}".encode())


class Computes:
    """Counts calls; each returns a fresh blob."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[str] = []
        self.delay = delay

    def __call__(self, name: str) -> Blob:
        time.sleep(self.delay)
        self.calls.append(name)
        return Blob(name)


def test_the_key_is_the_model_the_url_and_the_bytes():
    assert ImageKey.of("m", "/a.png", b"x") == ImageKey.of("m", "/a.png", b"x")
    assert ImageKey.of("m", "/a.png", b"x") != ImageKey.of("m", "/a.png", b"y")  # replaced
    assert ImageKey.of("m", "/a.png", b"x") != ImageKey.of("m", "/b.png", b"x")
    assert ImageKey.of("m", "/a.png", b"x") != ImageKey.of("n", "/a.png", b"x")


def test_a_second_request_is_a_hit():
    cache: EmbeddingCache[Blob] = EmbeddingCache(100 * MB)
    compute = Computes()
    first = cache.get(key(1), lambda: compute("1"))
    assert cache.get(key(1), lambda: compute("1 again")) is first
    assert compute.calls == ["1"]
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.entries, stats.bytes) == (1, 1, 1, 4 * MB)
    assert stats.hit_rate == 0.5


def test_the_least_recently_used_is_evicted_beyond_the_budget():
    cache: EmbeddingCache[Blob] = EmbeddingCache(12 * MB)  # three 4 MiB embeddings
    compute = Computes()
    for n in (1, 2, 3):
        cache.get(key(n), lambda n=n: compute(str(n)))
    cache.get(key(1), lambda: compute("1 again"))  # 1 is now the most recent
    cache.get(key(4), lambda: compute("4"))  # evicts 2
    assert key(2) not in cache and all(key(n) in cache for n in (1, 3, 4))
    stats = cache.stats()
    assert (stats.evictions, stats.entries, stats.bytes) == (1, 3, 12 * MB)
    cache.get(key(2), lambda: compute("2 again"))
    assert compute.calls == ["1", "2", "3", "4", "2 again"]


def test_a_zero_budget_keeps_nothing_and_an_oversized_embedding_is_not_kept():
    for budget in (0, 3 * MB):
        cache: EmbeddingCache[Blob] = EmbeddingCache(budget)
        compute = Computes()
        cache.get(key(1), partial(compute, "1"))
        cache.get(key(1), partial(compute, "1"))
        assert compute.calls == ["1", "1"] and cache.stats().bytes == 0


def test_concurrent_requests_for_one_image_compute_it_once():
    cache: EmbeddingCache[Blob] = EmbeddingCache(100 * MB)
    compute = Computes(delay=0.2)
    got: list[Blob] = []
    threads = [
        threading.Thread(target=lambda: got.append(cache.get(key(1), lambda: compute("1"))))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert compute.calls == ["1"] and len({id(b) for b in got}) == 1
    stats = cache.stats()
    assert stats.misses == 1 and stats.joins + stats.hits == 5 and stats.hit_rate == 5 / 6


def test_a_failure_reaches_every_waiter_and_is_not_cached():
    cache: EmbeddingCache[Blob] = EmbeddingCache(100 * MB)
    started = threading.Event()

    def broken() -> Blob:
        started.set()
        time.sleep(0.2)
        raise OSError("unreadable")

    errors: list[BaseException] = []

    def waiter() -> None:
        started.wait()
        try:
            cache.get(key(1), lambda: Blob("never"))
        except OSError as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    with pytest.raises(OSError, match="unreadable"):
        cache.get(key(1), broken)
    thread.join()
    assert [str(e) for e in errors] == ["unreadable"]
    assert cache.get(key(1), lambda: Blob("now")).name == "now"


def test_prefetch_computes_only_what_is_neither_cached_nor_running():
    cache: EmbeddingCache[Blob] = EmbeddingCache(100 * MB)
    compute = Computes()
    assert cache.prefetch(key(1), lambda: compute("1"))
    assert not cache.prefetch(key(1), lambda: compute("1 again"))
    cache.get(key(1), lambda: compute("never"))
    cache.get(key(1), lambda: compute("never"))
    stats = cache.stats()
    assert compute.calls == ["1"]
    assert (stats.prefetched, stats.prefetch_hits, stats.hits, stats.misses) == (1, 1, 2, 0)


def test_a_request_waiting_on_a_prefetch_marks_it_urgent_and_wakes_it():
    woken = threading.Event()
    cache: EmbeddingCache[Blob] = EmbeddingCache(100 * MB, on_urgent=woken.set)
    release = threading.Event()
    urgency: list[bool] = []

    def background() -> Blob:
        urgency.append(cache.urgent(key(1)))
        assert woken.wait(5)
        urgency.append(cache.urgent(key(1)))
        release.wait(5)
        return Blob("prefetched")

    thread = threading.Thread(target=lambda: cache.prefetch(key(1), background))
    thread.start()
    while not urgency:
        time.sleep(0.01)
    got: list[str] = []
    waiter = threading.Thread(
        target=lambda: got.append(cache.get(key(1), lambda: Blob("own")).name)
    )
    waiter.start()
    assert woken.wait(5)
    release.set()
    thread.join()
    waiter.join()
    assert urgency == [False, True]
    assert got == ["prefetched"]  # the waiter got the background's result, computed nothing
    stats = cache.stats()
    assert (stats.joins, stats.misses, stats.prefetched) == (1, 0, 1)
    assert not cache.urgent(key(1))
