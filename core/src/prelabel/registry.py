"""Backend discovery over the ``prelabel.backends`` entry-point group.

Discovery is an explicit function, never an import side effect, and it treats built-in
backends exactly like third-party ones: core holds no list of backends.
"""

from __future__ import annotations

import difflib
import inspect
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata

from prelabel.backend import NAME_PATTERN, Backend
from prelabel.errors import BackendLoadError, BackendNotFound

__all__ = ["ENTRY_POINT_GROUP", "BackendInfo", "discover", "load_backend", "select_backend"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "prelabel.backends"


@dataclass(frozen=True)
class BackendInfo:
    """An installed backend, described from package metadata without importing it."""

    name: str
    target: str
    dist: str | None
    version: str | None
    entry_point: metadata.EntryPoint


def discover(entry_points: Iterable[metadata.EntryPoint] | None = None) -> dict[str, BackendInfo]:
    """List installed backends by name (reads metadata only; imports nothing).

    Args:
        entry_points: the entry points to consider; defaults to the installed ones in the
            ``prelabel.backends`` group (tests inject their own).
    """
    eps = (
        entry_points if entry_points is not None else metadata.entry_points(group=ENTRY_POINT_GROUP)
    )
    found: dict[str, BackendInfo] = {}
    for ep in eps:
        dist = getattr(ep, "dist", None)
        info = BackendInfo(
            name=ep.name,
            target=ep.value,
            dist=dist.name if dist is not None else None,
            version=dist.version if dist is not None else None,
            entry_point=ep,
        )
        if ep.name in found and found[ep.name].target != ep.value:
            log.warning(
                "Two installed packages register the backend %r (%s and %s); using the first.",
                ep.name,
                found[ep.name].dist,
                info.dist,
            )
            continue
        found[ep.name] = info
    return found


def load_backend(
    name: str, entry_points: Iterable[metadata.EntryPoint] | None = None
) -> type[Backend]:
    """Import and validate the backend class registered as ``name``.

    Raises:
        BackendNotFound: nothing is registered under ``name`` (lists what is installed).
        BackendLoadError: the plugin fails to import or breaks the contract (says who, what, and
            how to fix it).
    """
    installed = discover(entry_points)
    if name not in installed:
        raise BackendNotFound(_not_installed(name, sorted(installed)))
    info = installed[name]
    where = f"backend {name!r} ({info.target}, from {info.dist or 'an unknown package'})"
    try:
        obj = info.entry_point.load()
    except ImportError as exc:
        raise BackendLoadError(
            f"Cannot import {where}: {exc}. Install the missing package into this environment."
        ) from exc
    except Exception as exc:
        # A plugin's import-time bug must name the plugin, not surface as a bare traceback.
        raise BackendLoadError(f"Importing {where} failed: {type(exc).__name__}: {exc}") from exc
    validate_backend_class(obj, name, where)
    return obj  # type: ignore[no-any-return]


def _not_installed(name: str, installed: list[str]) -> str:
    """Why ``name`` cannot be served: a likely typo names the installed backend it resembles."""
    have = ", ".join(installed) or "none"
    close = difflib.get_close_matches(name.lower(), installed, n=1, cutoff=0.6)
    if close:
        return f"No backend named {name!r} is installed; did you mean {close[0]!r}? (installed: {have})"
    return (
        f"No backend named {name!r} is installed (installed: {have}); "
        f"install it with `pip install prelabel-{name}`, or check the name."
    )


def validate_backend_class(obj: object, name: str, where: str) -> None:
    """Check that ``obj`` honours the contract; raise :class:`BackendLoadError` otherwise."""
    if not (inspect.isclass(obj) and issubclass(obj, Backend)):
        raise BackendLoadError(
            f"{where} must point to a subclass of prelabel.Backend, got {obj!r}. "
            "Fix the entry point in the plugin's pyproject.toml."
        )
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(getattr(obj, "__abstractmethods__", ())))
        raise BackendLoadError(f"{where} does not implement {missing}.")
    declared = getattr(obj, "name", None)
    if declared != name:
        raise BackendLoadError(
            f"{where} declares name={declared!r}; it must equal the entry-point name {name!r}."
        )
    if not NAME_PATTERN.match(name):
        raise BackendLoadError(f"{where}: backend names must match {NAME_PATTERN.pattern}.")
    controls = getattr(obj, "controls", None)
    if not isinstance(controls, frozenset) or not controls:
        raise BackendLoadError(
            f"{where} must set `controls` to a non-empty frozenset of tag names."
        )


def select_backend(
    requested: str | None, entry_points: Iterable[metadata.EntryPoint] | None = None
) -> str:
    """The backend name to serve: ``requested``, else the only one installed."""
    if requested:
        return requested
    installed = discover(entry_points)
    if len(installed) == 1:
        return next(iter(installed))
    if not installed:
        raise BackendNotFound(
            "No backend is installed: install one, e.g. `pip install prelabel-textcls`."
        )
    raise BackendNotFound(
        "Choose a backend: pass its name (`prelabel serve NAME`) or set PRELABEL_BACKEND "
        f"(installed: {', '.join(sorted(installed))})."
    )
