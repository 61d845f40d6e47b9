"""An interactive span finder written the way label_studio_ml interactive models are.

The annotator marks a span with a label; Label Studio sends it as ``context['result']`` and
the model answers with every other occurrence of that text (case-insensitive, whole words)
under the same label. Without a context (a task opened, Retrieve Predictions) it predicts
nothing. A selection shorter than two characters is refused with a message for the annotator.
"""

import re

from prelabel.compat import LabelStudioMLBase, ModelResponse, PredictionValue


class SpanFinder(LabelStudioMLBase):
    def setup(self):
        self.set("model_version", "span-finder-1")

    def predict(self, tasks, context=None, **kwargs):
        if not context or not context.get("result"):
            return ModelResponse(predictions=[])
        from_name, to_name, value = self.label_interface.get_first_tag_occurence("Labels", "Text")
        control = self.label_interface.get_control(from_name)
        marked = [r for r in context["result"] if r.get("from_name") == from_name]
        if not marked:
            return ModelResponse(predictions=[])
        predictions = []
        for task in tasks:
            text = self.preload_task_data(task, task["data"].get(value)) or ""
            regions = []
            for selection in marked:
                regions += self._others_like(text, selection["value"], control, to_name)
            predictions.append(PredictionValue(result=regions, score=1.0 if regions else None))
        return ModelResponse(predictions=predictions)

    def _others_like(self, text, chosen, control, to_name):
        needle = chosen["text"].strip()
        if len(needle) < 2:
            raise ValueError(
                f"Select at least 2 characters to search for (got {needle!r}): shorter"
                " selections match almost everywhere."
            )
        return [
            control.label(
                chosen["labels"],
                to_name=to_name,
                start=match.start(),
                end=match.end(),
                text=match.group(),
            )
            for match in re.finditer(rf"\b{re.escape(needle)}\b", text, flags=re.IGNORECASE)
            if match.start() != chosen.get("start")  # not the annotator's own span
        ]
