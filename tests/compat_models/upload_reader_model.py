"""A document summariser written the way label_studio_ml models read task files.

Tasks hold a link to a text file (an upload: ``/data/upload/<project>/<file>``; a local
file; a URL). ``self.get_local_path(url, task_id=...)`` downloads it with
``LABEL_STUDIO_URL``/``LABEL_STUDIO_API_KEY``; the model predicts the file's first sentence
into the ``TextArea`` and its word count into the ``Number``.
"""

import re

from prelabel.compat import LabelStudioMLBase, ModelResponse, PredictionValue


class DocumentSummary(LabelStudioMLBase):
    def setup(self):
        self.set("model_version", "summary-1")
        self.summary, self.document, self.value = self.get_first_tag_occurence("TextArea", "Text")
        self.word_count, _, _ = self.get_first_tag_occurence("Number", "Text")

    def predict(self, tasks, context=None, **kwargs):
        predictions = []
        for task in tasks:
            path = self.get_local_path(task["data"][self.value], task_id=task["id"])
            with open(path, encoding="utf-8") as f:
                text = f.read()
            first = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0]
            predictions.append(
                PredictionValue(
                    result=[
                        {
                            "from_name": self.summary,
                            "to_name": self.document,
                            "type": "textarea",
                            "value": {"text": [first]},
                        },
                        {
                            "from_name": self.word_count,
                            "to_name": self.document,
                            "type": "number",
                            "value": {"number": len(text.split())},
                        },
                    ]
                )
            )
        return ModelResponse(predictions=predictions)
