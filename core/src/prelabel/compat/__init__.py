"""Run models written for Label Studio's ML SDK (``label_studio_ml``) on prelabel.

Change the imports::

    from prelabel.compat import LabelStudioMLBase, ModelResponse, PredictionValue

and serve the project directory with ``prelabel start my_ml_backend -p 9090``. See this
package's README for every SDK name: what is supported, what differs and why.
"""

from prelabel.compat.base import LabelStudioMLBase, bump_version
from prelabel.compat.label_interface import (
    ControlTag,
    LabelInterface,
    LabelTag,
    NotSupported,
    ObjectTag,
)
from prelabel.compat.response import ModelResponse, PredictionValue

__all__ = [
    "DATA_UNDEFINED_NAME",
    "ControlTag",
    "LabelInterface",
    "LabelStudioMLBase",
    "LabelTag",
    "ModelResponse",
    "NotSupported",
    "ObjectTag",
    "PredictionValue",
    "bump_version",
    "make_app",
]

#: The data key of tasks imported as bare files or strings, when LS cannot tell the config's
#: variable (``label_studio_ml.utils.DATA_UNDEFINED_NAME``).
DATA_UNDEFINED_NAME = "$undefined$"

#: SDK module-level names with no counterpart here, and what to write instead.
_NOT_OFFERED = {
    "predict_fn": "subclass LabelStudioMLBase and override predict()",
    "update_fn": "subclass LabelStudioMLBase and override fit()",
    "init_app": "use prelabel.compat.make_app(ModelClass) (or `prelabel start DIR`)",
}


def __getattr__(name: str) -> object:
    # The server (Flask, gunicorn, the job queue) loads only when asked for.
    if name == "make_app":
        from prelabel.compat.server import make_app

        return make_app
    if name in _NOT_OFFERED:
        # ImportError, not AttributeError: `from prelabel.compat import x` keeps this message.
        raise ImportError(f"prelabel.compat has no {name}: {_NOT_OFFERED[name]}.")
    raise AttributeError(name)
