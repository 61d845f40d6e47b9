"""Your model: predictions for Label Studio, and training on its annotations.

Written against Label Studio's ML SDK; served by prelabel (`prelabel start .`).
"""

from typing import Any

from prelabel.compat import LabelStudioMLBase, ModelResponse


class NewModel(LabelStudioMLBase):
    """Custom ML backend model."""

    def setup(self) -> None:
        """Runs once per project: load weights here and set the version."""
        self.set("model_version", "0.0.1")

    def predict(
        self, tasks: list[dict[str, Any]], context: dict[str, Any] | None = None, **kwargs: Any
    ) -> ModelResponse:
        """One prediction per task, in order.

        Example for a `<Choices name="sentiment" toName="text">` config::

            {"score": 0.8, "result": [{"from_name": "sentiment", "to_name": "text",
             "type": "choices", "value": {"choices": ["Positive"]}}]}

        Media (images, audio…) of a task: `self.get_local_path(url, task_id=task["id"])`.
        """
        return ModelResponse(predictions=[])

    def fit(self, event: str, data: dict[str, Any], **kwargs: Any) -> None:
        """Runs in a background job for each webhook event (annotation created, updated,
        deleted, Start Training); `data` is the event's payload.

        Keep what you learn with `self.set(key, value)` (any JSON value) or in files under
        the MODEL_DIR environment variable, and set a new `model_version`.
        """
        self.bump_model_version()
