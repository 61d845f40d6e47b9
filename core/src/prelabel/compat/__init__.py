"""Run models written for Label Studio's ML SDK (``label_studio_ml``) on prelabel.

Change one import line::

    from prelabel.compat import LabelStudioMLBase, ModelResponse

and serve the project directory with ``prelabel start my_ml_backend -p 9090``. See this
package's README for what behaves differently from the SDK, and why.
"""

from prelabel.compat.base import LabelStudioMLBase, bump_version
from prelabel.compat.response import ModelResponse, PredictionValue

__all__ = ["LabelStudioMLBase", "ModelResponse", "PredictionValue", "bump_version", "make_app"]


def __getattr__(name: str) -> object:
    # The server (Flask, gunicorn, the job queue) loads only when asked for.
    if name == "make_app":
        from prelabel.compat.server import make_app

        return make_app
    raise AttributeError(name)
