"""Weight files named in settings or labeling configs, read only inside the weights root.

The weights root is ``PRELABEL_MODEL_DIR``: a name is a path relative to it. ``..``, absolute
paths and symlinks leading out of it are refused, so a labeling config (which any project
member may edit) cannot make the server read an arbitrary file. Nor are weights read from the
directories prelabel itself writes there with bytes callers choose (the media cache, project
data, work dirs): weight files are unpickled, and a task URL ending in ``.pt`` lands in the
media cache under a name anyone can compute.
"""

from __future__ import annotations

from pathlib import Path

from prelabel.errors import BackendLoadError

__all__ = ["find_weights", "locate_weights"]

#: Directories under the model directory that hold what prelabel downloads and writes.
WRITTEN_BY_PRELABEL = ("media-cache", "projects", "tmp")


def locate_weights(name: str, root: Path) -> Path:
    """Where the weights called ``name`` are (or would be) inside ``root``; not checked to exist.

    Args:
        name: a path relative to ``root`` (``"sam_vit_b_01ec64.pth"``, ``"custom/best.pt"``).
        root: the weights root (``PRELABEL_MODEL_DIR``).

    Raises:
        BackendLoadError: ``name`` is empty, absolute, leads out of ``root``, or into a
            directory prelabel writes (:data:`WRITTEN_BY_PRELABEL`).
    """
    name = name.strip()
    if not name:
        raise BackendLoadError(
            "An empty model name was configured; name a weights file inside PRELABEL_MODEL_DIR."
        )
    base = root.resolve()
    candidate = (base / name).resolve()
    if Path(name).is_absolute() or not candidate.is_relative_to(base):
        raise BackendLoadError(
            f"Refusing model path {name!r}: weights are read only inside PRELABEL_MODEL_DIR "
            f"({base}); give a path relative to it, without '..'."
        )
    if any(candidate.is_relative_to(base / sub) for sub in WRITTEN_BY_PRELABEL):
        raise BackendLoadError(
            f"Refusing model path {name!r}: {', '.join(WRITTEN_BY_PRELABEL)} under "
            "PRELABEL_MODEL_DIR hold files prelabel downloads and writes, never weights; put "
            f"weights elsewhere in {base} (e.g. {base / 'weights'})."
        )
    return candidate


def find_weights(name: str, root: Path, *, where_to_get: str) -> Path:
    """The existing weights file called ``name`` inside ``root``.

    Args:
        name: as for :func:`locate_weights`.
        root: the weights root (``PRELABEL_MODEL_DIR``).
        where_to_get: appended to the error when the file is missing: where to download it.

    Raises:
        BackendLoadError: the name is refused (see :func:`locate_weights`) or no file is
            there; the message names the path it looked at.
    """
    path = locate_weights(name, root)
    if not path.is_file():
        raise BackendLoadError(
            f"Model weights {name!r} not found at {path} (PRELABEL_MODEL_DIR={root.resolve()}). "
            f"{where_to_get}"
        )
    return path
