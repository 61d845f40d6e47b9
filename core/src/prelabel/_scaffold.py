"""``prelabel create``: a new plugin package from the template in ``backends/_template``."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from prelabel.backend import NAME_PATTERN
from prelabel.errors import ConfigError

__all__ = ["create_plugin"]

#: The template is a working plugin named "skeleton"; these words are replaced.
NAME, CLASS, UPPER = "skeleton", "SkeletonBackend", "SKELETON"


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_")) + "Backend"


def create_plugin(name: str, target: Path) -> Path:
    """Copy the template to ``target``, filling in the backend's name; returns ``target``."""
    if not NAME_PATTERN.match(name):
        raise ConfigError(
            f"Backend names must match {NAME_PATTERN.pattern} (e.g. 'my_model'), got {name!r}."
        )
    if target.exists() and any(target.iterdir()):
        raise ConfigError(f"{target} exists and is not empty; choose another directory.")
    template = resources.files("prelabel") / "_template"
    with resources.as_file(template) as source:
        shutil.copytree(
            source,
            target,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
    for path in sorted(target.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            path.write_text(
                text.replace(UPPER, name.upper())
                .replace(CLASS, _class_name(name))
                .replace(NAME, name),
                encoding="utf-8",
            )
        if NAME in path.name:
            path.rename(path.with_name(path.name.replace(NAME, name)))
    return target
