# ruff: noqa  (kept as the SDK user wrote it: the test is that it runs unchanged)
# The tutorial's sentiment backend, as written for label_studio_ml; only the import changed.
import json

from prelabel.compat import LabelStudioMLBase, ModelResponse

SETUPS = []


class SentimentModel(LabelStudioMLBase):
    def setup(self):
        SETUPS.append(self.project_id)
        self.set("model_version", "sentiment-v1")
        self.from_name, self.to_name, self.value = self.get_first_tag_occurence("Choices", "Text")

    def predict(self, tasks, context=None, **kwargs):
        words = json.loads(self.get("words") or "{}")
        predictions = []
        for task in tasks:
            counts = {"Positive": 0, "Negative": 0}
            for word in task["data"][self.value].lower().split():
                for label, n in words.get(word, {}).items():
                    counts[label] += n
            label = "Positive" if counts["Positive"] >= counts["Negative"] else "Negative"
            total = counts["Positive"] + counts["Negative"]
            predictions.append({
                "score": (counts[label] + 1) / (total + 2),
                "result": [{
                    "from_name": self.from_name,
                    "to_name": self.to_name,
                    "type": "choices",
                    "value": {"choices": [label]},
                }],
            })
        return ModelResponse(predictions=predictions)

    def fit(self, event, data, **kwargs):
        self.set("events", (self.get("events") or []) + [[event, sorted(data)]])
        words = json.loads(self.get("words") or "{}")
        if event in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            label = data["annotation"]["result"][0]["value"]["choices"][0]
            for word in data["task"]["data"][self.value].lower().split():
                words.setdefault(word, {}).setdefault(label, 0)
                words[word][label] += 1
            self.set("words", json.dumps(words))
        return {"model_version": self.bump_model_version(), "words": len(words)}
