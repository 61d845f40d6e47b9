"""Simulated labelling: synthetic text corpora, a simulated annotator, the labelling loop.

For measuring what a text-``Choices`` backend learns without downloading a data set: a
:class:`TopicCorpus` draws texts whose class shows only in a few topic words among filler, a
:class:`SimulatedAnnotator` labels them (accepting a shown suggestion with a set probability,
the anchoring bias the control group measures), and :func:`labelling_loop` runs the real
backend's ``fit`` and ``predict`` round after round, choosing the next tasks to label at random
or by :mod:`prelabel.metrics.scoring`'s uncertainty policies, as a project sorted by score would.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

from prelabel.backend import Backend, Context
from prelabel.media import MediaResolver
from prelabel.metrics.scoring import ScorePolicy, score_from_probabilities
from prelabel.results import Prediction
from prelabel.settings import CoreSettings
from prelabel.testing._context import make_context, make_train_job

__all__ = [
    "Example",
    "LoopStep",
    "Order",
    "SimulatedAnnotator",
    "TopicCorpus",
    "accuracy",
    "choice_result",
    "chosen",
    "labelling_loop",
    "labels_to_reach",
    "train",
]

#: How the next tasks to label are chosen: at random, or least score first under a policy.
Order = Literal["random"] | ScorePolicy


class Example(NamedTuple):
    """One text and its true class."""

    text: str
    label: str


@dataclass(frozen=True)
class TopicCorpus:
    """Texts of ``length`` words: ``topic_per_text`` topic words of the class among filler.

    Attributes:
        classes: number of classes (``"topic0"``, ``"topic1"``, …).
        topic_words: distinct topic words per class.
        filler_words: distinct filler words, shared by every class.
        topic_per_text: topic words in each text.
        length: words per text.
        noise: chance that a topic word is drawn from another class's words.
        weights: relative class frequencies; uniform when ``None``.
    """

    classes: int = 2
    topic_words: int = 5
    filler_words: int = 40
    topic_per_text: int = 3
    length: int = 12
    noise: float = 0.0
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.classes < 2 or self.topic_words < 1 or self.filler_words < 1:
            raise ValueError("a corpus needs 2+ classes, 1+ topic word and 1+ filler word")
        if not 1 <= self.topic_per_text <= self.length:
            raise ValueError("topic_per_text must be between 1 and length")
        if self.weights is not None and len(self.weights) != self.classes:
            raise ValueError(f"weights needs {self.classes} values, got {len(self.weights)}")

    @property
    def labels(self) -> list[str]:
        """The class names, which are also the ``<Choice>`` values."""
        return [f"topic{k}" for k in range(self.classes)]

    def label_config(self) -> str:
        """A labeling config with one single-choice ``topic`` control over ``$text``."""
        choices = "".join(f'<Choice value="{label}"/>' for label in self.labels)
        return (
            '<View><Text name="text" value="$text"/>'
            f'<Choices name="topic" toName="text" choice="single">{choices}</Choices></View>'
        )

    def sample(self, n: int, seed: int) -> list[Example]:
        """``n`` examples drawn with ``random.Random(seed)``."""
        rng = random.Random(seed)
        labels = self.labels
        out: list[Example] = []
        for _ in range(n):
            k = rng.choices(range(self.classes), weights=self.weights)[0]
            words = [self._topic_word(rng, k) for _ in range(self.topic_per_text)]
            words += [
                f"f{rng.randrange(self.filler_words)}"
                for _ in range(self.length - self.topic_per_text)
            ]
            rng.shuffle(words)
            out.append(Example(" ".join(words), labels[k]))
        return out

    def _topic_word(self, rng: random.Random, k: int) -> str:
        if rng.random() < self.noise:
            k = rng.choice([c for c in range(self.classes) if c != k])
        return f"k{k}t{rng.randrange(self.topic_words)}"


def choice_result(label: str, control: str = "topic") -> list[dict[str, Any]]:
    """An annotation ``result`` choosing ``label`` in ``control`` of :meth:`TopicCorpus.label_config`."""
    return [
        {"from_name": control, "to_name": "text", "type": "choices", "value": {"choices": [label]}}
    ]


def chosen(result: Sequence[Mapping[str, Any]]) -> str | None:
    """The first choice in a prediction's or annotation's ``result``, if any."""
    for item in result:
        choices = item.get("value", {}).get("choices")
        if isinstance(choices, list) and choices:
            return str(choices[0])
    return None


@dataclass
class SimulatedAnnotator:
    """Labels correctly, except that a shown suggestion is accepted with ``accept_probability``.

    An anchored annotator: with probability ``accept_probability`` they submit what the
    pre-annotation says, right or wrong; otherwise they label the task correctly. Without a
    suggestion (a control-group task) they always label correctly.
    """

    accept_probability: float
    rng: random.Random

    def label(self, truth: str, shown: Sequence[Mapping[str, Any]]) -> str:
        """The label submitted for a task whose true class is ``truth``."""
        suggestion = chosen(shown)
        if suggestion is not None and self.rng.random() < self.accept_probability:
            return suggestion
        return truth


@dataclass(frozen=True)
class LoopStep:
    """The model trained on ``labels`` labelled tasks, and its held-out accuracy."""

    labels: int
    accuracy: float


def accuracy(backend: Backend, ctx: Context, heldout: Sequence[Example]) -> float:
    """Share of ``heldout`` whose predicted choice is the true class (no prediction: wrong)."""
    tasks = [{"id": i, "data": {"text": ex.text}} for i, ex in enumerate(heldout)]
    predictions = backend.predict(tasks, ctx)
    right = sum(
        isinstance(prediction, Prediction)
        and chosen([r.to_ls() for r in prediction.result]) == ex.label
        for prediction, ex in zip(predictions, heldout, strict=True)
    )
    return right / len(heldout)


def train(
    backend: Backend,
    label_config: str,
    examples: Sequence[Example],
    *,
    workdir: Path,
    media: MediaResolver | Path,
    extra_params: Mapping[str, Any] | None = None,
) -> Context:
    """Fit ``backend`` on ``examples`` (one annotated task each) into ``workdir``.

    Pass one :class:`~prelabel.media.MediaResolver` for many calls: building one per call
    (from a directory) costs more than fitting a small model.

    Returns the context that predicts with the new version, or with the base model when
    ``fit`` trained nothing (e.g. a single class so far).
    """
    tasks = [
        {
            "id": i,
            "data": {"text": ex.text},
            "annotations": [{"id": i, "task": i, "result": choice_result(ex.label)}],
        }
        for i, ex in enumerate(examples)
    ]
    job = make_train_job(
        backend, label_config, tasks, workdir=workdir, media=media, extra_params=extra_params
    )
    trained = backend.fit(job) is not None
    return make_context(
        backend,
        label_config,
        media=media,
        model_dir=job.workdir if trained else None,
        extra_params=extra_params,
    )


def labelling_loop(
    backend: Backend,
    corpus: TopicCorpus,
    *,
    pool: Sequence[Example],
    heldout: Sequence[Example],
    order: Order,
    workdir: Path,
    seed: int,
    start: int = 4,
    batch: int = 4,
    target: float | None = None,
    max_labels: int | None = None,
) -> list[LoopStep]:
    """Label ``pool`` round by round, retraining after each batch; one step per training.

    The first ``start`` tasks are drawn at random (nothing is trained yet); then each round
    trains ``backend`` on every label so far, measures accuracy on ``heldout``, and labels the
    next ``batch`` tasks of the pool: random ones, or those the model scores lowest under the
    policy ``order`` (a task the model has no probabilities for counts as least certain).

    Stops when the accuracy reaches ``target``, when ``max_labels`` are used, or when the pool
    is exhausted.
    """
    rng = random.Random(seed)
    config = corpus.label_config()
    media = MediaResolver(CoreSettings(model_dir=workdir))
    labelled = rng.sample(range(len(pool)), min(start, len(pool)))
    limit = min(len(pool), max_labels if max_labels is not None else len(pool))
    steps: list[LoopStep] = []
    while True:
        ctx = train(
            backend,
            config,
            [pool[i] for i in labelled],
            workdir=workdir / f"v{len(steps)}",
            media=media,
        )
        steps.append(LoopStep(len(labelled), accuracy(backend, ctx, heldout)))
        if (target is not None and steps[-1].accuracy >= target) or len(labelled) >= limit:
            return steps
        taken = set(labelled)
        candidates = [i for i in range(len(pool)) if i not in taken]
        size = min(batch, limit - len(labelled))
        if order == "random":
            labelled += rng.sample(candidates, size)
        else:
            scores = _scores(backend, ctx, [pool[i] for i in candidates], order)
            ranked = sorted(
                zip(scores, (rng.random() for _ in candidates), candidates, strict=True)
            )
            labelled += [i for _, _, i in ranked[:size]]


def _scores(
    backend: Backend, ctx: Context, examples: Sequence[Example], policy: ScorePolicy
) -> list[float]:
    tasks = [{"id": i, "data": {"text": ex.text}} for i, ex in enumerate(examples)]
    out: list[float] = []
    for prediction in backend.predict(tasks, ctx):
        probabilities = prediction.probabilities if isinstance(prediction, Prediction) else None
        out.append(score_from_probabilities(probabilities, policy) if probabilities else 0.0)
    return out


def labels_to_reach(steps: Sequence[LoopStep], target: float) -> int | None:
    """Labels used by the first model whose accuracy reached ``target``; ``None`` if none did."""
    return next((s.labels for s in steps if s.accuracy >= target), None)
