"""A tiny interactive backend for the e2e suite, served by prelabel's own app factory.

For a config with ``<Labels>`` and ``<Choices>`` on one ``<Text>`` (see test_interactive.py).

``python interactive_backend.py PORT MODEL_DIR`` serves it on 127.0.0.1:PORT (Flask's
threaded server). Given the spans an annotator marked (``params.context.result``, type
``labels``), it suggests the sentiment choice their words carry; without context it
suggests nothing, as an interactive-only model should (protocol §5).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from prelabel import results as R
from prelabel._server import create_app
from prelabel.backend import Backend, Context, TaskPredictions
from prelabel.results import Prediction
from prelabel.settings import CoreSettings

POSITIVE = ("love", "great", "wonderful", "excellent")


class CueBackend(Backend):
    """Suggests Positive when a marked span holds a positive word, else Negative."""

    name: ClassVar[str] = "cue"
    controls: ClassVar[frozenset[str]] = frozenset({"Choices"})
    interactive: ClassVar[bool] = True

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        spans = [
            str(item.get("value", {}).get("text", "")).lower()
            for item in ctx.interaction
            if item.get("type") == "labels"
        ]
        out: list[TaskPredictions] = []
        for _ in tasks:
            prediction = Prediction()
            if spans:
                label = "Positive" if any(w in s for s in spans for w in POSITIVE) else "Negative"
                for control in ctx.label_config.controls_of("Choices"):
                    prediction.result.append(R.choices(control, [label], score=0.9))
            out.append(prediction)
        return out


def main() -> None:
    port, model_dir = int(sys.argv[1]), Path(sys.argv[2])
    app = create_app(CueBackend(), CoreSettings(model_dir=model_dir), start_jobs=False)
    app.run(host="127.0.0.1", port=port, threaded=True)


if __name__ == "__main__":
    main()
