"""Reference backends the kit tests itself against: one correct, several deliberately broken.

``ReferenceBackend`` fills Choices on Text: after ``fit`` it answers with the label annotated
for an identical text (score 1.0); otherwise with a choice whose name occurs in the text
(score 0.6); otherwise nothing. Small, deterministic, and honest about what it learned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from prelabel import results as R
from prelabel.annotations import judged_result
from prelabel.backend import Backend, Context, Evaluation, TaskPredictions, TrainJob, TrainResult
from prelabel.results import Prediction
from prelabel.scenario import Scenario, annotated_task, text_task

__all__ = [
    "REFERENCE_CONFIG",
    "BrokenCountBackend",
    "BrokenEvaluationBackend",
    "BrokenRegionBackend",
    "ReferenceBackend",
]

REFERENCE_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/><Choice value="Negative"/>
  </Choices>
</View>"""

MEMORY_FILE = "memory.json"


def _choice(label: str) -> list[dict[str, Any]]:
    return [
        {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


class ReferenceBackend(Backend):
    """A correct, tiny, trainable backend."""

    name: ClassVar[str] = "reference"
    controls: ClassVar[frozenset[str]] = frozenset({"Choices"})

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        memory: dict[str, str] = {}
        if ctx.model_dir is not None and (ctx.model_dir / MEMORY_FILE).exists():
            memory = json.loads((ctx.model_dir / MEMORY_FILE).read_text())
        out: list[TaskPredictions] = []
        for task in tasks:
            prediction = Prediction()
            for control in ctx.label_config.controls_of("Choices"):
                key = control.objects[0].value_key if control.objects else None
                text = str(task.get("data", {}).get(key, "")) if key else ""
                if text in memory and control.has_label(memory[text]):
                    prediction.result.append(R.choices(control, [memory[text]], score=1.0))
                    continue
                hits = [label for label in control.label_names if label.lower() in text.lower()]
                if hits:
                    prediction.result.append(R.choices(control, hits[:1], score=0.6))
            out.append(prediction)
        return out

    def fit(self, job: TrainJob) -> TrainResult | None:
        memory: dict[str, str] = {}
        for task in job.tasks:
            text = task.get("data", {}).get("text")
            for item in judged_result(task):
                if item.get("type") == "choices" and isinstance(text, str):
                    memory[text] = item["value"]["choices"][0]
        if not memory:
            return None
        (job.workdir / MEMORY_FILE).write_text(json.dumps(memory))
        return TrainResult(metrics={"memorised": float(len(memory))})

    @classmethod
    def conformance_scenarios(cls) -> Sequence[Scenario]:
        train = [
            annotated_task(1, {"text": "I love it"}, _choice("Positive")),
            annotated_task(2, {"text": "I hate it"}, _choice("Negative")),
        ]
        tasks = [text_task(10, "I love it"), text_task(11, "so negative"), text_task(12, "")]
        return [Scenario(REFERENCE_CONFIG, tasks, train_tasks=train)]


class BrokenCountBackend(ReferenceBackend):
    """Drops the last task of every batch (the 1:1 rule broken)."""

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        return list(super().predict(tasks, ctx))[:-1]


class BrokenRegionBackend(ReferenceBackend):
    """Answers with a label the control does not have."""

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        bogus = R.Region(
            from_name="sentiment", to_name="text", type="choices", value={"choices": ["Neutral"]}
        )
        return [Prediction(result=[bogus]) for _ in tasks]


class BrokenEvaluationBackend(ReferenceBackend):
    """Reports its held-out score as a percentage (the gate needs a value in [0, 1])."""

    def evaluate(self, tasks: Sequence[Mapping[str, Any]], ctx: Context) -> Evaluation:
        return Evaluation("accuracy_percent", 100.0 * super().evaluate(tasks, ctx).value)
