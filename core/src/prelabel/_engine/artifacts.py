"""Model versions in shared storage (``PRELABEL_ARTIFACTS_URL``), cached on each machine.

Without it a version's files live in the model directory of the machine that trained it,
which only machines sharing that directory can serve. With it, promotion uploads the files
to ``<url>/projects/<slug>/artifacts/<uuid>/`` through fsspec (``s3://`` for any
S3-compatible store, a path or ``file://`` for a shared volume, or any fsspec protocol whose
package is installed) *before* the version's row is committed, so a replica that reads the
row (every request does) finds the files complete. Each machine downloads a version once, on
first use, into the same relative path under its model directory; versions never change, so
the copy never goes stale, and a newly promoted version is served without a restart.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prelabel.errors import ConfigError, ServiceUnavailable

__all__ = ["ArtifactStore"]

log = logging.getLogger(__name__)


class ArtifactStore:
    """Uploads, downloads and deletes version directories under one fsspec URL.

    Args:
        url: ``PRELABEL_ARTIFACTS_URL``.
        options: fsspec storage options (``PRELABEL_ARTIFACTS_OPTIONS``).
        cache: the model directory; downloads land in ``cache/<key>``, staged in ``cache/tmp``.
    """

    def __init__(self, url: str, options: Mapping[str, Any], cache: Path) -> None:
        try:
            import fsspec
        except ImportError:
            raise ConfigError(
                "PRELABEL_ARTIFACTS_URL needs fsspec: pip install 'prelabel[scale]'"
            ) from None
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **dict(options))
        except (ImportError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"PRELABEL_ARTIFACTS_URL {url!r} cannot be used ({exc}); s3:// needs"
                " pip install 'prelabel[scale]', other protocols their fsspec package."
            ) from None
        self.url = url
        self.root = str(root).rstrip("/")
        self.cache = cache
        self._lock = threading.Lock()

    def upload(self, source: Path, key: str) -> None:
        """Copy the files under ``source`` to ``key``.

        Raises:
            ServiceUnavailable: the storage cannot be written.
        """
        remote = self._remote(key)
        try:
            for path in sorted(p for p in source.rglob("*") if p.is_file()):
                target = f"{remote}/{path.relative_to(source).as_posix()}"
                self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
                self.fs.put_file(str(path), target)
        except Exception as exc:
            raise self._unavailable(f"store {key}", exc) from exc

    def local(self, key: str) -> Path:
        """``cache/<key>``, downloaded first if this machine has no copy yet.

        Raises:
            ServiceUnavailable: the storage cannot be read, or has nothing under ``key``.
        """
        target = self.cache / key
        if target.is_dir():
            return target
        with self._lock:  # one download per version and process; other processes race safely
            if not target.is_dir():
                self._download(key, target)
        return target

    def delete(self, key: str) -> None:
        """Remove ``key`` from the storage (best effort: an orphan costs space, not service)."""
        try:
            self.fs.rm(self._remote(key), recursive=True)
        except FileNotFoundError:
            pass
        except Exception:
            log.exception("Could not delete %s from %s; delete it by hand", key, self.url)

    def _download(self, key: str, target: Path) -> None:
        remote = self._remote(key)
        staged = Path(tempfile.mkdtemp(prefix="download-", dir=self.cache / "tmp"))
        try:
            self.fs.invalidate_cache(remote)
            files = [f for f in self.fs.find(remote) if not f.endswith("/")]
            if not files:
                raise FileNotFoundError(f"nothing under {remote}")
            for name in files:
                local = staged / name[len(remote) :].lstrip("/")
                local.parent.mkdir(parents=True, exist_ok=True)
                self.fs.get_file(name, str(local))
        except Exception as exc:
            shutil.rmtree(staged, ignore_errors=True)
            raise self._unavailable(f"fetch {key}", exc) from exc
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(staged, target)
            log.info("Fetched %s from %s (%d files)", key, self.url, len(files))
        except OSError:
            shutil.rmtree(staged, ignore_errors=True)  # another process got it there first
            if not target.is_dir():
                raise

    def _remote(self, key: str) -> str:
        return f"{self.root}/{key}" if self.root else key

    def _unavailable(self, what: str, exc: Exception) -> ServiceUnavailable:
        detail = " ".join(str(exc).split())[:300]
        return ServiceUnavailable(
            f"Could not {what} in the model storage {self.url} ({type(exc).__name__}: {detail})."
            " Check PRELABEL_ARTIFACTS_URL, its credentials and that the storage is up."
        )
