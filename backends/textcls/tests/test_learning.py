"""textcls learns: held-out accuracy rises after fit, from nothing at cold start."""

import random
from importlib import resources
from pathlib import Path

import pytest

from prelabel.config import LabelConfig
from prelabel.testing import annotated_task, make_context, make_train_job, text_task
from prelabel_textcls import TextClassifierBackend

CONFIG = """<View>
  <Text name="text" value="$review"/>
  <Choices name="sentiment" toName="text"><Choice value="Positive"/><Choice value="Negative"/><Choice value="Neutral"/></Choices>
</View>"""

MULTI = """<View>
  <Text name="text" value="$review"/>
  <Choices name="topics" toName="text" choice="multiple"><Choice value="Price"/><Choice value="Quality"/></Choices>
</View>"""

WORDS = {
    "Positive": ["love", "great", "excellent", "wonderful", "happy", "recommend"],
    "Negative": ["hate", "awful", "broken", "refund", "terrible", "disappointed"],
    "Neutral": ["okay", "average", "fine", "arrived", "normal", "expected"],
}
FILLER = ["the", "product", "it", "was", "box", "this", "item", "delivery", "and", "very"]


def review(rng: random.Random, label: str) -> str:
    words = rng.sample(WORDS[label], 2) + rng.sample(FILLER, 4)
    # A word of another class in a third of the texts keeps the problem from being trivial.
    if rng.random() < 0.33:
        words.append(rng.choice(WORDS[rng.choice([k for k in WORDS if k != label])]))
    rng.shuffle(words)
    return " ".join(words)


def dataset(seed: int, n: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(review(rng, label), label) for label in (rng.choice(list(WORDS)) for _ in range(n))]


def choice(name: str, labels: list[str]) -> list[dict]:
    return [{"from_name": name, "to_name": "text", "type": "choices", "value": {"choices": labels}}]


@pytest.fixture
def backend():
    b = TextClassifierBackend()
    b.load()
    return b


def train(backend, tmp_path, config, tasks, name="v1"):
    job = make_train_job(backend, config, tasks, workdir=tmp_path / name, media=tmp_path / "m")
    return job.workdir, backend.fit(job)


def accuracy(backend, ctx, heldout):
    tasks = [{"id": i, "data": {"review": text}} for i, (text, _) in enumerate(heldout)]
    predictions = backend.predict(tasks, ctx)
    assert len(predictions) == len(tasks)
    correct = 0
    for prediction, (_, label) in zip(predictions, heldout, strict=True):
        if prediction.result and prediction.result[0].value["choices"] == [label]:
            correct += 1
    return correct / len(heldout)


def test_heldout_accuracy_rises_after_fit(backend, tmp_path):
    heldout = dataset(seed=2, n=150)
    cold = accuracy(backend, make_context(backend, CONFIG, media=tmp_path), heldout)
    assert cold == 0.0  # cold start predicts nothing rather than guessing

    small = [
        annotated_task(i, {"review": t}, choice("sentiment", [y]))
        for i, (t, y) in enumerate(dataset(1, 9))
    ]
    big = [
        annotated_task(i, {"review": t}, choice("sentiment", [y]))
        for i, (t, y) in enumerate(dataset(1, 240))
    ]
    small_dir, _ = train(backend, tmp_path, CONFIG, small, "small")
    big_dir, result = train(backend, tmp_path, CONFIG, big, "big")
    after_small = accuracy(
        backend, make_context(backend, CONFIG, media=tmp_path, model_dir=small_dir), heldout
    )
    after_big = accuracy(
        backend, make_context(backend, CONFIG, media=tmp_path, model_dir=big_dir), heldout
    )
    assert after_small > cold
    assert after_big >= 0.85
    assert after_big > after_small
    assert result.metrics["sentiment.examples"] == 240.0


def test_probabilities_give_the_score(backend, tmp_path):
    tasks = [
        annotated_task(i, {"review": t}, choice("sentiment", [y]))
        for i, (t, y) in enumerate(dataset(3, 120))
    ]
    model_dir, _ = train(backend, tmp_path, CONFIG, tasks)
    (prediction,) = backend.predict(
        [{"id": 1, "data": {"review": "love great excellent"}}],
        make_context(backend, CONFIG, media=tmp_path, model_dir=model_dir),
    )
    assert prediction.result[0].value["choices"] == ["Positive"]
    assert len(prediction.probabilities) == 3
    assert prediction.result[0].score == pytest.approx(max(prediction.probabilities))


def test_multiple_choice_control(backend, tmp_path):
    rng = random.Random(5)
    price, quality = (
        ["cheap", "expensive", "price", "cost"],
        ["sturdy", "flimsy", "quality", "solid"],
    )
    tasks = []
    for i in range(80):
        labels, words = [], rng.sample(FILLER, 3)
        if i % 3 != 1:
            labels.append("Price")
            words += rng.sample(price, 2)
        if i % 3 != 0:
            labels.append("Quality")
            words += rng.sample(quality, 2)
        tasks.append(annotated_task(i, {"review": " ".join(words)}, choice("topics", labels)))
    model_dir, _ = train(backend, tmp_path, MULTI, tasks)
    ctx = make_context(backend, MULTI, media=tmp_path, model_dir=model_dir)
    both, only_price = backend.predict(
        [
            {"id": 1, "data": {"review": "cheap price but solid quality"}},
            {"id": 2, "data": {"review": "expensive cost"}},
        ],
        ctx,
    )
    assert sorted(both.result[0].value["choices"]) == ["Price", "Quality"]
    assert only_price.result[0].value["choices"] == ["Price"]


def test_fit_needs_two_classes(backend, tmp_path):
    tasks = [
        annotated_task(i, {"review": f"text {i}"}, choice("sentiment", ["Positive"]))
        for i in range(10)
    ]
    _, result = train(backend, tmp_path, CONFIG, tasks)
    assert result is None


def test_tasks_without_text_get_empty_predictions(backend, tmp_path):
    tasks = [
        annotated_task(i, {"review": t}, choice("sentiment", [y]))
        for i, (t, y) in enumerate(dataset(3, 60))
    ]
    model_dir, _ = train(backend, tmp_path, CONFIG, tasks)
    out = backend.predict(
        [text_task(1, "", key="review"), {"id": 2, "data": {}}],
        make_context(backend, CONFIG, media=tmp_path, model_dir=model_dir),
    )
    assert [p.result for p in out] == [[], []]


def test_rejects_config_without_text_choices(backend):
    from prelabel import UnsupportedConfig

    image = '<View><Image name="i" value="$img"/><Choices name="c" toName="i"><Choice value="A"/></Choices></View>'
    with pytest.raises(UnsupportedConfig, match="Text"):
        backend.check_config(LabelConfig.parse(image))
    # Per-region choices classify spans, which need a span to attach to: not the text's class.
    per_span = (
        '<View><Text name="t" value="$text"/><Labels name="l" toName="t"><Label value="P"/>'
        '</Labels><Choices name="c" toName="t" perRegion="true"><Choice value="A"/></Choices></View>'
    )
    with pytest.raises(UnsupportedConfig, match="Text"):
        backend.check_config(LabelConfig.parse(per_span))


TEMPLATES = Path(str(resources.files("prelabel.testing") / "fixtures" / "ls-templates"))
# Read from the XML by hand: static <Choices> on a Text/Paragraphs object fed by a task field.
ACCEPTED = {
    "community-contributions__two-level-sentiment-analysis-of-x-twitter-posts.xml",
    "conversational-ai__intent-classification-and-slot-filling.xml",
    "conversational-ai__response-selection.xml",
    "generative-ai__chatbot-assessment.xml",
    "natural-language-processing__content-moderation.xml",
    "natural-language-processing__text-classification.xml",
    "ranking-and-scoring__document-retrieval.xml",
    "ranking-and-scoring__serp-ranking.xml",
}


@pytest.mark.parametrize("template", sorted(p.name for p in TEMPLATES.glob("*.xml")))
def test_every_ls_template_is_accepted_or_refused_with_a_reason(backend, template):
    from prelabel import UnsupportedConfig

    config = LabelConfig.parse((TEMPLATES / template).read_text())
    if template in ACCEPTED:
        backend.check_config(config)
    else:
        with pytest.raises(UnsupportedConfig, match="Choices"):
            backend.check_config(config)


def test_label_coverage_says_every_choice_is_learned(backend):
    coverage = backend.label_coverage(LabelConfig.parse(CONFIG))
    assert [(c.control, c.source, c.labels, c.unreachable) for c in coverage] == [
        ("sentiment", "learned", ("Positive", "Negative", "Neutral"), ())
    ]
