"""Named entities in Label Studio: ``Labels`` on ``Text`` and ``HyperTextLabels`` on ``HyperText``.

Every such control is filled by a token classifier: the project's own fine-tuned model for the
control once it has trained one, else the base NER model (``PRELABEL_NER_MODEL``), else
nothing (an empty prediction, never a guess). Training starts from the served version, else
the base model, else a small pretrained encoder (``PRELABEL_NER_ENCODER``).
"""

from __future__ import annotations

import atexit
import functools
import logging
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from prelabel import (
    Backend,
    BackendLoadError,
    BackendSettings,
    BulkHints,
    Context,
    Control,
    Evaluation,
    LabelConfig,
    LabelMap,
    Prediction,
    TaskPredictions,
    TrainJob,
    TrainResult,
    UnsupportedConfig,
)
from prelabel.annotations import judged_annotation, judged_result, unannotated
from prelabel.errors import ConfigError
from prelabel.threads import use_torch_threads
from prelabel_ner.documents import SUPPORTED, Document, read_document
from prelabel_ner.entities import Spans, find_spans
from prelabel_ner.inference import tag_texts
from prelabel_ner.models import LoadedModel, ModelCache, resolve_source
from prelabel_ner.training import Example, TrainOptions, artifact_dir, fine_tune

if TYPE_CHECKING:
    from prelabel.testing import Scenario

__all__ = ["NerBackend", "NerStats", "ner_controls"]

log = logging.getLogger(__name__)


def ner_controls(config: LabelConfig) -> list[Control]:
    """``Labels`` on a ``Text``, ``HyperTextLabels`` or ``Labels`` on a ``HyperText``, with
    static labels, whose object reads a task field."""
    return [
        c
        for c in config.controls_of("Labels", "HyperTextLabels")
        if c.labels
        and c.objects
        and (c.type, c.objects[0].tag.lower()) in SUPPORTED
        and c.objects[0].value_key
    ]


@dataclass
class NerStats:
    """Counters the backend exposes: what the models found but LS was not shown."""

    unmapped: Counter[str] = field(default_factory=Counter)
    unplaced: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, unmapped: Counter[str], unplaced: int = 0) -> None:
        with self._lock:
            self.unmapped.update(unmapped)
            self.unplaced += unplaced


@dataclass(frozen=True)
class Found:
    """One control's document and spans for one task (``document`` is ``None`` without text)."""

    control: Control
    document: Document | None
    spans: Spans


class NerBackend(Backend):
    """Pre-annotates entities with transformers token classifiers, fine-tuned per project."""

    name: ClassVar[str] = "ner"
    controls: ClassVar[frozenset[str]] = frozenset({"Labels", "HyperTextLabels"})
    heavy_modules: ClassVar[tuple[str, ...]] = ("torch", "transformers")
    #: Larger calls sort more windows by length; the model already uses every core.
    bulk: ClassVar[BulkHints] = BulkHints(batch_size=64, concurrency=1)

    class Settings(BackendSettings):
        """Options (env ``PRELABEL_NER_*`` or per project via LS's extra_params)."""

        model: str = Field(
            default="",
            description="Base token-classification model (Hugging Face id or directory); empty: none.",
        )
        encoder: str = Field(
            default="sentence-transformers/all-MiniLM-L6-v2",
            description="Pretrained encoder a project fine-tunes from when there is no base model.",
        )
        max_length: int = Field(
            default=512,
            ge=8,
            description="Tokens per window, special tokens included (capped by the model).",
        )
        window_overlap: int = Field(
            default=128,
            ge=0,
            description="Tokens consecutive windows share (at most half a window).",
        )
        batch_size: int = Field(default=16, ge=1, description="Windows per forward pass.")
        device: str = Field(default="", description="torch device ('cpu', 'cuda:0'…); empty: auto.")
        tuned_cache_size: int = Field(
            default=4, ge=1, description="Fine-tuned per-project models kept in memory."
        )
        min_examples: int = Field(
            default=4, ge=1, description="Fewest annotated texts a control needs to train."
        )
        epochs: int = Field(default=8, ge=1, description="Fine-tuning epochs.")
        learning_rate: float = Field(
            default=3e-4,
            gt=0,
            description="AdamW learning rate (for small encoders; about 5e-5 for base-sized ones).",
        )
        train_batch_size: int = Field(default=8, ge=1, description="Windows per training step.")
        seed: int = Field(default=0, description="Seed for head initialisation and shuffling.")
        freeze_embeddings: bool = Field(
            default=True,
            description="Keep the word embeddings fixed while fine-tuning (faster; off for models trained from scratch).",
        )

    def __init__(
        self, settings: BackendSettings | None = None, *, home: Path | None = None
    ) -> None:
        super().__init__(settings, home=home)
        self.stats = NerStats()
        self._cache: ModelCache | None = None
        self._lock = threading.Lock()

    @property
    def _settings(self) -> NerBackend.Settings:
        assert isinstance(self.settings, self.Settings)
        return self.settings

    @property
    def models(self) -> ModelCache:
        """The process's loaded models."""
        with self._lock:
            if self._cache is None:
                self._cache = ModelCache(self._settings.tuned_cache_size)
            return self._cache

    def load(self) -> None:
        """Import torch and transformers, set torch's threads, load and warm up the base model.

        The warm-up inference makes ``/health`` answering mean the first ``/predict`` is fast.
        """
        try:
            import torch  # noqa: F401  (fail at start, naming the package)
            import transformers  # noqa: F401
        except ImportError as exc:
            raise BackendLoadError(
                f"The ner backend needs torch and transformers: pip install prelabel-ner ({exc})."
            ) from exc
        use_torch_threads(self.threads)
        settings = self._settings
        if settings.model:
            model = self._base(settings)
            tag_texts(model, ["Warm-up text."], batch_size=1, overlap=0)

    def _base(self, settings: NerBackend.Settings) -> LoadedModel:
        source = resolve_source(settings.model, self.home)
        return self.models.base(source, max_length=settings.max_length, device=settings.device)

    def check_settings(self, settings: BackendSettings) -> None:
        """Refuse a model or encoder path that cannot be loaded (missing, or outside the model
        directory), so LS shows why at *Connect Model*; hub ids are checked when loaded."""
        assert isinstance(settings, self.Settings)
        for key in ("model", "encoder"):
            name = getattr(settings, key)
            if name:
                try:
                    resolve_source(name, self.home)
                except BackendLoadError as exc:
                    raise ConfigError(f"PRELABEL_NER_{key.upper()} ({key}): {exc}") from None

    def check_config(self, config: LabelConfig) -> None:
        super().check_config(config)
        if not ner_controls(config):
            raise UnsupportedConfig(
                "The ner backend needs a <Labels> control on a <Text> object, or "
                "<HyperTextLabels> (or <Labels>) on a <HyperText> object, whose value is a "
                'task field such as value="$text", with at least one <Label>.'
            )

    def _model_for(
        self, control: Control, version: Path | None, settings: NerBackend.Settings
    ) -> LoadedModel | None:
        if version is not None:
            tuned = artifact_dir(version, control.name)
            if (tuned / "config.json").is_file():
                return self.models.tuned(
                    tuned, max_length=settings.max_length, device=settings.device
                )
        return self._base(settings) if settings.model else None

    def _find(self, tasks: Sequence[Mapping[str, Any]], ctx: Context) -> list[list[Found]]:
        """Every NER control's document and spans, per task."""
        settings = ctx.settings
        assert isinstance(settings, self.Settings)
        documents: dict[tuple[int, str], Document | None] = {}

        def document(index: int, control: Control) -> Document | None:
            obj = control.objects[0]
            key = (index, obj.name)
            if key not in documents:
                documents[key] = read_document(tasks[index], obj, ctx.media)
            return documents[key]

        out: list[list[Found]] = [[] for _ in tasks]
        groups: dict[tuple[int, str], tuple[LoadedModel, list[Control]]] = {}
        for control in ner_controls(ctx.label_config):
            model = self._model_for(control, ctx.model_dir, settings)
            if model is None:
                for i in range(len(tasks)):
                    out[i].append(Found(control, document(i, control), Spans()))
                continue
            # Controls on one object served by one model share its forward passes.
            group = groups.setdefault((id(model), control.objects[0].name), (model, []))
            group[1].append(control)
        for model, controls in groups.values():
            texts = {i: doc.text for i in range(len(tasks)) if (doc := document(i, controls[0]))}
            tagged = dict(
                zip(
                    texts,
                    tag_texts(
                        model,
                        list(texts.values()),
                        batch_size=settings.batch_size,
                        overlap=settings.window_overlap,
                    ),
                    strict=True,
                )
            )
            for control in controls:
                label_map = LabelMap.build(control, model.tagset.types)
                for i in range(len(tasks)):
                    found = (
                        find_spans(tagged[i], model.tagset, label_map) if i in tagged else Spans()
                    )
                    self.stats.add(found.unmapped)
                    for entity_type, n in found.unmapped.items():
                        ctx.count_dropped("unmapped", entity_type, n)
                    out[i].append(Found(control, document(i, control), found))
        return out

    def predict(
        self, tasks: Sequence[Mapping[str, Any]], ctx: Context
    ) -> Sequence[TaskPredictions]:
        return [self._prediction(found) for found in self._find(tasks, ctx)]

    def _prediction(self, found: Sequence[Found]) -> Prediction:
        """The task's regions; its probabilities are the least confident control's distribution."""
        prediction = Prediction()
        unplaced = 0
        for item in found:
            if item.document is None:
                continue
            for span in item.spans.spans:
                region = item.document.region(
                    item.control, span.start, span.end, span.label, span.score
                )
                if region is None:
                    unplaced += 1
                else:
                    prediction.result.append(region)
        if unplaced:
            self.stats.add(Counter(), unplaced)
        distributions = [f.spans.distribution for f in found if f.spans.distribution]
        if distributions:
            prediction.probabilities = min(distributions, key=max)
        return prediction

    def evaluate(self, tasks: Sequence[Mapping[str, Any]], ctx: Context) -> Evaluation:
        """Span-level micro F1 on ``tasks``: a span counts when its control, start, end and label
        all match the judged annotation's (1.0 when neither side has any span).

        The promotion gate calls it in the training job, so it runs on the training threads.
        """
        found_by_task = self._find(unannotated(tasks), ctx)
        hits = predicted = annotated = 0
        for task, found in zip(tasks, found_by_task, strict=True):
            result = judged_result(task)
            for item in found:
                gold = set(item.document.gold(item.control, result)) if item.document else set()
                guess = {(s.start, s.end, s.label) for s in item.spans.spans}
                hits += len(gold & guess)
                predicted += len(guess)
                annotated += len(gold)
        if predicted + annotated == 0:
            return Evaluation("span_f1", 1.0)
        return Evaluation("span_f1", 2 * hits / (predicted + annotated))

    def fit(self, job: TrainJob) -> TrainResult | None:
        """Fine-tune each NER control with enough annotated texts into ``job.workdir``.

        A control without enough new data keeps the served version's model (copied over), so
        promoting this version never drops what a control had learned.
        """
        settings = job.settings
        assert isinstance(settings, self.Settings)
        options = TrainOptions(
            epochs=settings.epochs,
            batch_size=settings.train_batch_size,
            learning_rate=settings.learning_rate,
            max_length=settings.max_length,
            overlap=settings.window_overlap,
            seed=settings.seed,
            freeze_embeddings=settings.freeze_embeddings,
        )
        metrics: dict[str, float] = {}
        trained = False
        for control in ner_controls(job.label_config):
            served = artifact_dir(job.base_dir, control.name) if job.base_dir else None
            if served is not None and not (served / "config.json").is_file():
                served = None
            examples = self._examples(job, control)
            spans = sum(len(e.spans) for e in examples)
            target = artifact_dir(job.workdir, control.name)
            if len(examples) < settings.min_examples or spans == 0:
                log.info(
                    "ner: control %s has %d annotated texts with %d spans; it trains from "
                    "%d texts with at least one span.",
                    control.name,
                    len(examples),
                    spans,
                    settings.min_examples,
                )
                if served is not None:
                    shutil.copytree(served, target)
                continue
            source = str(served) if served else self._start(settings)
            found = fine_tune(source, control, examples, target, options)
            metrics.update({f"{control.name}.{k}": v for k, v in found.items()})
            trained = True
        return TrainResult(metrics=metrics) if trained else None

    def _start(self, settings: NerBackend.Settings) -> str:
        """What a control without a trained version fine-tunes from."""
        return resolve_source(settings.model or settings.encoder, self.home)

    @staticmethod
    def _examples(job: TrainJob, control: Control) -> list[Example]:
        """Texts of the tasks with a judged annotation, and the spans it labels for ``control``.

        An annotation that labels nothing for the control says the text has no such entity.
        """
        examples: list[Example] = []
        for task in job.tasks:
            if judged_annotation(task) is None:
                continue
            document = read_document(task, control.objects[0], job.media)
            if document is not None:
                examples.append(Example(document.text, document.gold(control, judged_result(task))))
        return examples

    @classmethod
    def conformance_scenarios(cls) -> Sequence[Scenario]:
        """Text and HyperText NER on synthetic texts with a tiny model built locally."""
        from prelabel_ner.synthetic import conformance_scenarios

        return conformance_scenarios(_tiny_model())


@functools.cache
def _tiny_model() -> Path:
    """The tiny model ``prelabel check ner`` predicts and trains with, built once per process
    in a private temporary directory (removed at exit)."""
    from prelabel_ner.synthetic import build_tiny_model

    root = Path(tempfile.mkdtemp(prefix="prelabel-ner-check-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return build_tiny_model(root / "model")
