"""The skeleton backend.

A working starting point: it fills ``<Choices>`` on ``<Text>`` by looking for each choice's
name in the text. Replace the rule in ``predict`` with your model; load the model in ``load``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from prelabel import Backend, BackendSettings, Context, Prediction, TaskPredictions
from prelabel import results as R
from prelabel.scenario import Scenario, text_task

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="topic" toName="text"><Choice value="Sports"/><Choice value="Politics"/></Choices>
</View>"""


class SkeletonBackend(Backend):
    """Fills Choices on Text (replace with your model)."""

    name: ClassVar[str] = "skeleton"
    controls: ClassVar[frozenset[str]] = frozenset({"Choices"})
    # Modules imported only in load(); the conformance kit checks they stay out of import time.
    heavy_modules: ClassVar[tuple[str, ...]] = ()

    class Settings(BackendSettings):
        """Options: env PRELABEL_SKELETON_<FIELD> or LS extra_params."""

        confidence: float = Field(default=0.9, ge=0.0, le=1.0, description="Score of a match.")

    def load(self) -> None:
        """Import heavy libraries and load weights here, once per process."""

    def predict(self, tasks: Sequence[Mapping[str, Any]], ctx: Context) -> Sequence[TaskPredictions]:
        settings = ctx.settings
        assert isinstance(settings, self.Settings)
        out: list[TaskPredictions] = []
        for task in tasks:
            prediction = Prediction()
            for control in ctx.label_config.controls_of("Choices"):
                if control.per_region:  # classifies regions, which this backend does not make
                    continue
                key = control.objects[0].value_key if control.objects else None
                text = str(task.get("data", {}).get(key, "")).lower() if key else ""
                hits = [label for label in control.label_names if label.lower() in text]
                if hits:
                    prediction.result.append(R.choices(control, hits[:1], score=settings.confidence))
            out.append(prediction)
        return out

    @classmethod
    def conformance_scenarios(cls) -> Sequence[Scenario]:
        return [Scenario(CONFIG, [text_task(1, "Sports news"), text_task(2, "nothing here")])]
