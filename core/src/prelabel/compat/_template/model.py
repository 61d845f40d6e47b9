"""A starting point for your model, served to Label Studio by `prelabel start .`.

As generated it pre-annotates a Choices control on a Text object: a task gets the choice whose
name appears in its text. Replace `guess` with your model; the rest shows where things go.
"""

from typing import Any

from prelabel.compat import LabelStudioMLBase, ModelResponse, PredictionValue


class MyModel(LabelStudioMLBase):
    def setup(self) -> None:
        # Once per project (not per request): load weights here. A `model_version` set here
        # is what /setup reports until fit() sets a newer one.
        self.set("model_version", "starter-1")

    def guess(self, text: str, choices: list[str]) -> str | None:
        """Your model: the choice for one text, or None to suggest nothing."""
        return next((c for c in choices if c.lower() in text.lower()), None)

    def predict(
        self, tasks: list[dict[str, Any]], context: dict[str, Any] | None = None, **kwargs: Any
    ) -> ModelResponse:
        # One prediction per task, in the order of `tasks`. `context` is set for interactive
        # calls (the regions the annotator just drew), None otherwise.
        try:
            control, text_object, key = self.label_interface.get_first_tag_occurence(
                "Choices", "Text"
            )
        except ValueError:
            return ModelResponse(predictions=[])  # nothing this starter knows how to fill
        choices = self.label_interface.get_control(control).labels
        predictions = []
        for task in tasks:
            # preload_task_data reads the text behind a URL (valueType="url" configs).
            text = str(self.preload_task_data(task, task["data"].get(key)) or "")
            choice = self.guess(text, choices)
            region = {
                "from_name": control,
                "to_name": text_object,
                "type": "choices",
                "value": {"choices": [choice]},
            }
            predictions.append(PredictionValue(result=[region] if choice else []))
        return ModelResponse(predictions=predictions)

    def fit(self, event: str, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # Runs in a background job for annotation events (ANNOTATION_CREATED, _UPDATED,
        # ANNOTATIONS_CREATED, ANNOTATIONS_DELETED) and Start Training (START_TRAINING);
        # `data` is Label Studio's webhook body. Keep what you learn with self.set(key, value)
        # or in files under $MODEL_DIR, then give the new model a new version.
        seen = int(self.get("events_seen") or 0) + 1
        self.set("events_seen", seen)
        return {"events_seen": seen, "model_version": self.bump_model_version()}
