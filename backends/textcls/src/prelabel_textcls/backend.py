"""Choices on Text: TF-IDF features and a logistic-regression classifier per project.

Cold start: until a project has trained a version, the backend predicts nothing (an empty
result) rather than a guess. Every ``Choices`` control attached to a ``Text``-like object is
filled by its own classifier; ``choice="multiple"`` controls use one-vs-rest probabilities.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from prelabel import (
    Backend,
    BackendSettings,
    Context,
    LabelCoverage,
    MediaError,
    Prediction,
    TaskPredictions,
    TrainJob,
    TrainResult,
    UnsupportedConfig,
)
from prelabel import results as R

if TYPE_CHECKING:
    from prelabel.config import Control, LabelConfig, ObjectTag
    from prelabel.media import MediaResolver
    from prelabel.testing import Scenario

__all__ = ["TextClassifierBackend"]

log = logging.getLogger(__name__)

TEXT_OBJECTS = frozenset({"text", "hypertext", "paragraphs"})
MODEL_FILE = "model.joblib"


def text_controls(config: LabelConfig) -> list[Control]:
    """``Choices`` with static choices on a text-like object that takes its text from a task field.

    Dynamic choices (``value="$options"``) change per task, so one classifier cannot learn them;
    ``perRegion`` choices classify spans, not the text.
    """
    return [
        c
        for c in config.controls_of("Choices")
        if c.labels
        and not c.per_region
        and c.objects
        and c.objects[0].tag.lower() in TEXT_OBJECTS
        and c.objects[0].value_key
    ]


def task_text(task: Mapping[str, Any], obj: ObjectTag, media: MediaResolver) -> str | None:
    """The task's text for the object; paragraphs (lists of dicts) are joined.

    With ``valueType="url"`` the data value is the URL of a text file (an LS upload, a local
    file, a cloud URI…), fetched through the media resolver; a failed fetch is logged (the
    message names the URL, the cause and the fix) and the task has no text.
    """
    value = task.get("data", {}).get(obj.value_key or "")
    if isinstance(value, str) and obj.attrs.get("valueType", "").lower() == "url":
        try:
            return media.read_bytes(value, task_id=task.get("id")).decode("utf-8", errors="replace")
        except MediaError as exc:
            log.warning("textcls: task %s: %s", task.get("id"), exc)
            return None
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [str(v.get("text", "")) if isinstance(v, Mapping) else str(v) for v in value]
        return "\n".join(parts)
    return None


class TextClassifierBackend(Backend):
    """Classifies text into a project's ``<Choices>`` with TF-IDF + logistic regression."""

    name: ClassVar[str] = "textcls"
    controls: ClassVar[frozenset[str]] = frozenset({"Choices"})
    heavy_modules: ClassVar[tuple[str, ...]] = ("sklearn", "joblib")

    class Settings(BackendSettings):
        """Options (env ``PRELABEL_TEXTCLS_*`` or per project via LS's extra_params)."""

        min_examples: int = Field(default=4, ge=2, description="Fewest labelled texts to train on.")
        c: float = Field(default=10.0, gt=0, description="Inverse regularisation strength.")
        max_features: int = Field(default=50_000, ge=10, description="Vocabulary size cap.")
        ngram_max: int = Field(default=1, ge=1, le=3, description="Longest word n-gram.")
        class_weight: Literal["balanced", "none"] = Field(
            default="balanced",
            description="'balanced': every class weighs the same in training; 'none': by count.",
        )
        threshold: float = Field(
            default=0.5, ge=0.0, le=1.0, description="Probability a multiple-choice label needs."
        )
        cache_size: int = Field(default=32, ge=1, description="Per-project models kept in memory.")

    def __init__(self, settings: BackendSettings | None = None) -> None:
        super().__init__(settings)
        self._models: OrderedDict[Path, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def load(self) -> None:
        import joblib  # noqa: F401  (fail at start, not on the first request)
        import sklearn  # noqa: F401

    def check_config(self, config: LabelConfig) -> None:
        super().check_config(config)
        if not text_controls(config):
            raise UnsupportedConfig(
                "The textcls backend needs a <Choices> control with fixed <Choice> values, "
                "attached to a <Text> (or HyperText/Paragraphs) object whose value is a task "
                'field such as value="$text".'
            )

    def label_coverage(self, config: LabelConfig) -> Sequence[LabelCoverage]:
        """Every choice can be predicted once annotations have taught it (none before)."""
        return [LabelCoverage.of(c, "learned") for c in text_controls(config)]

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        models = self._load_models(ctx.model_dir)
        if not models:
            return [Prediction.empty() for _ in tasks]
        settings = ctx.settings
        assert isinstance(settings, self.Settings)
        out: list[Prediction] = [Prediction() for _ in tasks]
        for control in text_controls(ctx.label_config):
            model = models.get(control.name)
            if model is None:
                continue
            texts = [task_text(t, control.objects[0], ctx.media) for t in tasks]
            rows = [i for i, text in enumerate(texts) if text]
            if not rows:
                continue
            probabilities = model["pipeline"].predict_proba([texts[i] for i in rows])
            classes: list[str] = list(model["classes"])
            for i, probs in zip(rows, probabilities, strict=True):
                region, task_probs = self._region(control, classes, list(probs), settings.threshold)
                if region is not None:
                    out[i].result.append(region)
                    if task_probs is not None and out[i].probabilities is None:
                        out[i].probabilities = task_probs
        return out

    def _region(
        self, control: Control, classes: list[str], probs: list[float], threshold: float
    ) -> tuple[R.Region | None, list[float] | None]:
        """The control's region and, for single choice, the distribution behind it."""
        allowed = set(control.label_names)
        ranked = sorted(
            ((p, c) for p, c in zip(probs, classes, strict=True) if c in allowed), reverse=True
        )
        if not ranked:
            return None, probs
        if control.multiple:
            chosen = [c for p, c in ranked if p >= threshold] or [ranked[0][1]]
            score = min(p for p, c in ranked if c in chosen)
            # Per-label probabilities are independent: the task's confidence is its weakest choice.
            return R.choices(control, chosen, score=score), None
        return R.choices(control, [ranked[0][1]], score=ranked[0][0]), probs

    def _load_models(self, model_dir: Path | None) -> dict[str, Any]:
        if model_dir is None:
            return {}
        with self._lock:
            if model_dir in self._models:
                self._models.move_to_end(model_dir)
                return self._models[model_dir]
        import joblib

        path = model_dir / MODEL_FILE
        models: dict[str, Any] = joblib.load(path) if path.exists() else {}
        with self._lock:
            self._models[model_dir] = models
            size = self.settings.cache_size if isinstance(self.settings, self.Settings) else 32
            while len(self._models) > size:
                self._models.popitem(last=False)
        return models

    @classmethod
    def conformance_scenarios(cls) -> Sequence[Scenario]:
        from prelabel.testing import Scenario, annotated_task, text_task

        good = ["I love it", "great product, love it", "wonderful and great", "love this, great"]
        bad = ["I hate it", "terrible product, hate it", "awful and terrible", "hate this, awful"]

        def choice(label: str) -> list[dict[str, Any]]:
            return [
                {
                    "from_name": "sentiment",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": [label]},
                }
            ]

        train = [annotated_task(i, {"text": t}, choice("Positive")) for i, t in enumerate(good, 1)]
        train += [annotated_task(i, {"text": t}, choice("Negative")) for i, t in enumerate(bad, 11)]
        tasks = [
            text_task(101, "love it, great"),
            text_task(102, "awful, I hate it"),
            text_task(103, ""),
        ]
        return [Scenario(label_config=SENTIMENT_CONFIG, tasks=tasks, train_tasks=train)]

    def fit(self, job: TrainJob) -> TrainResult | None:
        import joblib
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import MultiLabelBinarizer

        settings = job.settings
        assert isinstance(settings, self.Settings)
        models: dict[str, Any] = {}
        metrics: dict[str, float] = {}
        for control in text_controls(job.label_config):
            texts, labels = examples(job.tasks, control, job.media)
            classes = sorted({label for row in labels for label in row})
            if len(texts) < settings.min_examples or len(classes) < 2:
                log.info(
                    "textcls: control %s has %d examples over %d classes; need %d and 2.",
                    control.name,
                    len(texts),
                    len(classes),
                    settings.min_examples,
                )
                continue
            vectorizer = TfidfVectorizer(
                ngram_range=(1, settings.ngram_max),
                max_features=settings.max_features,
                sublinear_tf=True,
            )
            # Balanced by default: from 18 texts of one class and 6 of another, an unweighted
            # model learns the class prior instead of the words (the README's learning curve).
            classifier = LogisticRegression(
                C=settings.c,
                class_weight=None if settings.class_weight == "none" else "balanced",
                max_iter=1000,
            )
            if control.multiple:
                binarizer = MultiLabelBinarizer(classes=classes)
                pipeline = make_pipeline(vectorizer, OneVsRestClassifier(classifier))
                pipeline.fit(texts, binarizer.fit_transform(labels))
            else:
                pipeline = make_pipeline(vectorizer, classifier)
                pipeline.fit(texts, [row[0] for row in labels])
                classes = [str(c) for c in pipeline.classes_]
            models[control.name] = {"pipeline": pipeline, "classes": classes}
            metrics[f"{control.name}.examples"] = float(len(texts))
            metrics[f"{control.name}.classes"] = float(len(classes))
        if not models:
            return None
        joblib.dump(models, job.workdir / MODEL_FILE)
        return TrainResult(metrics=metrics)


def examples(
    tasks: Sequence[Mapping[str, Any]], control: Control, media: MediaResolver
) -> tuple[list[str], list[list[str]]]:
    """(text, chosen labels) pairs for ``control`` from the tasks' latest annotations."""
    texts: list[str] = []
    labels: list[list[str]] = []
    for task in tasks:
        annotations = task.get("annotations") or []
        if not annotations:
            continue
        latest = max(
            annotations, key=lambda a: str(a.get("updated_at") or a.get("created_at") or "")
        )
        chosen = [
            str(choice)
            for item in latest.get("result") or []
            if item.get("from_name") == control.name and item.get("type") == "choices"
            for choice in item.get("value", {}).get("choices", [])
        ]
        text = task_text(task, control.objects[0], media) if chosen else None
        if text:
            texts.append(text)
            labels.append(chosen)
    return texts, labels


SENTIMENT_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single">
    <Choice value="Positive"/><Choice value="Negative"/>
  </Choices>
</View>"""
