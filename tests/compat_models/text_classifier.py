"""A text classifier written the way label_studio_ml models are, run by ``prelabel start``.

It reads its controls through ``self.label_interface``, learns from Label Studio's events in
``fit`` (each annotation as it is made, deletions forgotten, *Start Training* re-reading every
annotation from Label Studio's export API with ``LABEL_STUDIO_URL``/``LABEL_STUDIO_API_KEY``),
and keeps a scikit-learn pipeline pickled under ``MODEL_DIR``. Versions: ``textclf-0``
untrained, one bump per ``fit`` that changed the training set.
"""

import logging
import os
import pickle

import httpx
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import make_pipeline

from prelabel.compat import LabelStudioMLBase, ModelResponse, PredictionValue

logger = logging.getLogger(__name__)

MODEL_DIR = os.getenv("MODEL_DIR", ".")


class TextClassifier(LabelStudioMLBase):
    def setup(self):
        self.set("model_version", "textclf-0")
        self.from_name, self.to_name, self.value = self.label_interface.get_first_tag_occurence(
            "Choices", "Text"
        )
        self.labels = self.label_interface.get_control(self.from_name).labels
        logger.info("TextClassifier set up for project %s", self.project_id)

    # -- prediction ------------------------------------------------------------------------

    def _pipeline(self):
        path = self.get("model_path")
        if not path:
            return None
        with open(path, "rb") as f:
            return pickle.load(f)

    def _text(self, task):
        # valueType="url" configs hold a link to the text, not the text.
        return self.preload_task_data(task, task["data"][self.value])

    def predict(self, tasks, context=None, **kwargs):
        pipeline = self._pipeline()
        if pipeline is None:
            return ModelResponse(predictions=[])
        probabilities = pipeline.predict_proba([self._text(task) for task in tasks])
        predictions = []
        for row in probabilities:
            best = int(row.argmax())
            predictions.append(
                PredictionValue(
                    score=float(row[best]),
                    result=[
                        {
                            "from_name": self.from_name,
                            "to_name": self.to_name,
                            "type": "choices",
                            "value": {"choices": [str(pipeline.classes_[best])]},
                        }
                    ],
                )
            )
        return ModelResponse(predictions=predictions)

    # -- training --------------------------------------------------------------------------

    def _choice(self, result):
        for region in result:
            if region.get("from_name") == self.from_name and region["value"].get("choices"):
                return region["value"]["choices"][0]
        return None

    def _from_label_studio(self, project_id):
        """{annotation id: [text, label]} of every annotated task, from LS's export API."""
        url = os.environ["LABEL_STUDIO_URL"].rstrip("/")
        answer = httpx.get(
            f"{url}/api/projects/{project_id}/export",
            params={"exportType": "JSON"},
            headers={"Authorization": f"Token {os.environ['LABEL_STUDIO_API_KEY']}"},
            timeout=30,
        )
        answer.raise_for_status()
        examples = {}
        for task in answer.json():
            for annotation in task["annotations"]:
                label = self._choice(annotation["result"])
                if label and not annotation.get("was_cancelled"):
                    examples[str(annotation["id"])] = [self._text(task), label]
        return examples

    def fit(self, event, data, **kwargs):
        examples = dict(self.get("examples") or {})
        if event in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            label = self._choice(data["annotation"]["result"])
            if label is None:
                return {"skipped": "no choice in the annotation"}
            examples[str(data["annotation"]["id"])] = [self._text(data["task"]), label]
        elif event == "ANNOTATIONS_DELETED":
            for annotation in data["annotations"]:
                examples.pop(str(annotation["id"]), None)
        elif event == "START_TRAINING":
            examples = self._from_label_studio(data["project"]["id"])
        else:
            return {"skipped": event}
        self.set("examples", examples)
        path = None
        if examples:
            texts, labels = zip(*examples.values(), strict=True)
            pipeline = make_pipeline(CountVectorizer(), MultinomialNB())
            pipeline.fit(texts, labels)
            version = self.bump_model_version()
            path = os.path.join(MODEL_DIR, f"project{self.project_id}-{version}.pkl")
            with open(path, "wb") as f:
                pickle.dump(pipeline, f)
        else:
            version = self.bump_model_version()
        self.set("model_path", path)
        return {"model_version": version, "examples": len(examples)}
