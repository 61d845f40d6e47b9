"""prelabel.vision.weights and .cache: weights only inside the root; models loaded once."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from prelabel import BackendLoadError
from prelabel.vision.cache import ModelCache
from prelabel.vision.weights import find_weights, locate_weights


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    (root / "sub").mkdir(parents=True)
    (root / "a.pt").write_bytes(b"a")
    (root / "sub" / "b.pt").write_bytes(b"b")
    (tmp_path / "outside.pt").write_bytes(b"secret")
    return root


def test_names_resolve_inside_the_root(root: Path) -> None:
    assert locate_weights("a.pt", root) == (root / "a.pt").resolve()
    assert locate_weights(" sub/b.pt ", root) == (root / "sub" / "b.pt").resolve()
    assert locate_weights("not-yet.pt", root) == (root / "not-yet.pt").resolve()


@pytest.mark.parametrize("bad", ["../outside.pt", "sub/../../outside.pt", "/etc/passwd"])
def test_names_leaving_the_root_are_refused(root: Path, bad: str) -> None:
    with pytest.raises(BackendLoadError, match="only inside PRELABEL_MODEL_DIR"):
        locate_weights(bad, root)


def test_a_symlink_out_of_the_root_is_refused(root: Path) -> None:
    os.symlink(root.parent / "outside.pt", root / "link.pt")
    with pytest.raises(BackendLoadError, match="only inside PRELABEL_MODEL_DIR"):
        locate_weights("link.pt", root)


def test_an_empty_name_is_refused(root: Path) -> None:
    with pytest.raises(BackendLoadError, match="empty model name"):
        locate_weights("  ", root)


def test_a_missing_file_names_the_path_and_where_to_get_it(root: Path) -> None:
    assert find_weights("sub/b.pt", root, where_to_get="-") == (root / "sub" / "b.pt").resolve()
    with pytest.raises(BackendLoadError) as missing:
        find_weights("c.pt", root, where_to_get="Download it from https://example.org/c.pt.")
    message = str(missing.value)
    assert str((root / "c.pt").resolve()) in message
    assert "https://example.org/c.pt" in message
    with pytest.raises(BackendLoadError, match="not found"):
        find_weights("sub", root, where_to_get="")  # a directory is not a weights file


class Loads:
    """A loader that records its calls and takes a while, as real weights do."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, source: str) -> tuple[str, int]:
        time.sleep(0.05)
        with self.lock:
            self.calls.append(source)
            return (source, len(self.calls))


def test_base_models_load_once_even_when_asked_concurrently(root: Path) -> None:
    loads = Loads()
    cache = ModelCache(loads, resolve=lambda name: str(locate_weights(name, root)))
    got: list[tuple[str, int]] = []
    threads = [threading.Thread(target=lambda: got.append(cache.base("a.pt"))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert loads.calls == [str((root / "a.pt").resolve())]
    assert len({id(model) for model in got}) == 1
    # Two spellings of one file are one model.
    assert cache.base("sub/../a.pt") is got[0]
    assert cache.loaded == [str((root / "a.pt").resolve())]


def test_tuned_models_are_an_lru_of_bounded_size(root: Path) -> None:
    loads = Loads()
    cache = ModelCache(loads, resolve=str, max_tuned=2)
    first = cache.tuned(root / "1.pt")
    cache.tuned(root / "2.pt")
    assert cache.tuned(root / "1.pt") is first  # a hit refreshes it
    cache.tuned(root / "3.pt")  # evicts 2, the least recently used
    assert cache.loaded == [str(root / "1.pt"), str(root / "3.pt")]
    cache.tuned(root / "2.pt")
    assert loads.calls == [str(root / p) for p in ("1.pt", "2.pt", "3.pt", "2.pt")]


def test_a_load_error_is_not_cached(root: Path) -> None:
    attempts: list[str] = []

    def load(source: str) -> str:
        attempts.append(source)
        if len(attempts) == 1:
            raise BackendLoadError(f"Could not load {source}")
        return source

    cache = ModelCache(load, resolve=str)
    with pytest.raises(BackendLoadError, match="Could not load x"):
        cache.base("x")
    assert cache.base("x") == "x"
    assert attempts == ["x", "x"]
