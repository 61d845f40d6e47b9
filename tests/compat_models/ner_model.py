"""A pattern-based entity tagger written the way label_studio_ml NER models are.

``get_first_tag_occurence('Labels', 'Text')`` finds the span control and the text; the
model's entity kinds (DATE, MONEY, EMAIL, PERCENT) map to the config's labels with
``build_label_map`` (a label's ``predicted_values``, else its name). Kinds without a label are
not predicted. A task's score is its least confident span; a task without text gets no spans.
"""

import re

from prelabel.compat import LabelStudioMLBase, ModelResponse, PredictionValue

#: entity kind: (pattern, confidence)
PATTERNS = {
    "DATE": (re.compile(r"\b\d{4}-\d{2}-\d{2}\b"), 0.95),
    "MONEY": (re.compile(r"[$€£]\d+(?:[.,]\d{2})?"), 0.9),
    "EMAIL": (re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"), 0.85),
    "PERCENT": (re.compile(r"\b\d+(?:\.\d+)?%"), 0.8),
}


class PatternTagger(LabelStudioMLBase):
    def setup(self):
        self.set("model_version", "patterns-2024.1")

    def predict(self, tasks, context=None, **kwargs):
        from_name, to_name, value = self.get_first_tag_occurence("Labels", "Text")
        label_map = self.build_label_map(from_name, list(PATTERNS))
        predictions = []
        for task in tasks:
            text = task["data"].get(value) or ""
            spans = []
            for kind, (pattern, confidence) in PATTERNS.items():
                if kind not in label_map:
                    continue
                for match in pattern.finditer(text):
                    spans.append(
                        {
                            "from_name": from_name,
                            "to_name": to_name,
                            "type": "labels",
                            "value": {
                                "start": match.start(),
                                "end": match.end(),
                                "text": match.group(),
                                "labels": [label_map[kind]],
                            },
                            "score": confidence,
                        }
                    )
            spans.sort(key=lambda span: span["value"]["start"])
            score = min((span["score"] for span in spans), default=None)
            predictions.append(PredictionValue(result=spans, score=score))
        return ModelResponse(predictions=predictions)
