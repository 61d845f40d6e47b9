"""Import a compat project's ``model.py`` by path, without installing it (as the SDK's CLI did)."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path

from prelabel.compat.base import LabelStudioMLBase
from prelabel.errors import BackendLoadError

__all__ = ["load_model_class"]

_SDK_HINT = (
    "change the imports to `from prelabel.compat import LabelStudioMLBase, ModelResponse,"
    " PredictionValue`"
)
_SDK_TYPES_HINT = (
    "PredictionValue, LabelInterface, ControlTag and ObjectTag come from prelabel.compat"
    " (`from prelabel.compat import PredictionValue`); for label-studio-sdk's own client,"
    " install it (pip install label-studio-sdk)"
)


def load_model_class(
    directory: Path, script: str = "model.py", class_name: str | None = None
) -> type[LabelStudioMLBase]:
    """The ``LabelStudioMLBase`` subclass defined in ``directory/script``.

    ``directory`` goes first on ``sys.path`` so the script's helper modules import. The module
    gets a name unique to its path, so two projects never share one.

    Raises:
        BackendLoadError: the script is missing, fails to import, or does not define exactly
            one subclass (name it with ``class_name`` when it defines several).
    """
    directory = directory.resolve()
    path = directory / script
    if not path.is_file():
        raise BackendLoadError(
            f"No {script} in {directory}: create one with `prelabel create {directory.name}`."
        )
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    module_name = f"prelabel_compat_user_{digest}"
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise BackendLoadError(f"Cannot import {path}: not a Python file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickle look classes up here
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:
        del sys.modules[module_name]
        root = (exc.name or "").split(".")[0]
        if root == "label_studio_ml":
            raise BackendLoadError(f"{path} imports label_studio_ml: {_SDK_HINT}.") from exc
        if root == "label_studio_sdk":
            raise BackendLoadError(
                f"{path} imports {exc.name}, which is not installed: {_SDK_TYPES_HINT}."
            ) from exc
        raise BackendLoadError(
            f"{path} needs the module {exc.name!r}: install it (pip install -r"
            f" {directory / 'requirements.txt'})."
        ) from exc
    except Exception as exc:
        del sys.modules[module_name]
        raise BackendLoadError(f"Importing {path} failed: {type(exc).__name__}: {exc}") from exc
    found = {
        name: obj
        for name, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, LabelStudioMLBase)
        and obj is not LabelStudioMLBase
        and obj.__module__ == module_name
    }
    if class_name is not None:
        if class_name not in found:
            raise BackendLoadError(
                f"{path} defines no LabelStudioMLBase subclass named {class_name!r}"
                f" (found: {', '.join(sorted(found)) or 'none'})."
            )
        return found[class_name]
    if len(found) == 1:
        return next(iter(found.values()))
    if found:
        raise BackendLoadError(
            f"{path} defines several models ({', '.join(sorted(found))}); choose one with"
            " --class NAME."
        )
    raise BackendLoadError(
        f"{path} defines no subclass of prelabel.compat.LabelStudioMLBase; if it subclasses"
        f" label_studio_ml's, {_SDK_HINT}."
    )
