"""``prelabel create DIR``: a compat project laid out like the SDK's ``label-studio-ml create``."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from prelabel.errors import ConfigError

__all__ = ["create_project"]


def create_project(target: Path) -> Path:
    """Copy the compat template (model.py, requirements, Dockerfile, compose, test, README).

    Raises:
        ConfigError: ``target`` exists and is not an empty directory.
    """
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigError(f"{target} exists and is not empty; choose another directory.")
    template = resources.files("prelabel.compat") / "_template"
    with resources.as_file(template) as source:
        shutil.copytree(
            source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    return target
