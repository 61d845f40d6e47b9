"""fit: spans to word labels, the head grown to the project's labels, versions built on versions."""

import hashlib

import pytest
import torch
from transformers import AutoModelForTokenClassification

from prelabel.config import LabelConfig
from prelabel.testing import make_context, make_train_job
from prelabel_ner import NerBackend
from prelabel_ner.synthetic import HTML_CONFIG, NER_CONFIG, annotated_task, corpus, html_task
from prelabel_ner.tags import TagSet, bio_tags
from prelabel_ner.training import artifact_dir, grow_head, word_labels

# Building and training the test models takes seconds alone, minutes on a busy shared machine.
pytestmark = pytest.mark.timeout(900)

TAGS = {tag: i for i, tag in enumerate(bio_tags(["PER", "LOC"]))}


def names(labels):
    return [bio_tags(["PER", "LOC"])[i] for i in labels]


def test_word_labels_from_character_spans():
    # words: "Anna" "Schmidt" "in" "Berlin" "."
    starts, ends = [0, 5, 13, 16, 23], [4, 12, 15, 22, 24]
    labels = word_labels(starts, ends, [(0, 12, "PER"), (16, 22, "LOC")], TAGS)
    assert names(labels) == ["B-PER", "I-PER", "O", "B-LOC", "O"]


def test_a_span_inside_a_word_labels_the_word_and_overlaps_keep_the_first():
    starts, ends = [0, 5, 13], [4, 12, 15]
    assert names(word_labels(starts, ends, [(6, 9, "PER")], TAGS)) == ["O", "B-PER", "O"]
    overlapping = [(5, 15, "LOC"), (0, 12, "PER")]
    assert names(word_labels(starts, ends, overlapping, TAGS)) == ["B-PER", "I-PER", "O"]
    assert names(word_labels(starts, ends, [], TAGS)) == ["O", "O", "O"]


GROWN = """<View>
  <Labels name="label" toName="text">
    <Label value="Person" predicted_values="PER"/>
    <Label value="Company"/>
    <Label value="Location" predicted_values="LOC"/>
  </Labels>
  <Text name="text" value="$text"/>
</View>"""


def test_head_keeps_the_rows_it_has_and_grows_new_ones(base_dir):
    model = AutoModelForTokenClassification.from_pretrained(base_dir)
    source = TagSet.from_labels(model.config.id2label)
    old = model.classifier.weight.detach().clone()
    old_ids = {tag: i for i, tag in model.config.id2label.items()}
    tags = bio_tags(["Person", "Company", "Location"])
    grow_head(model, source, tags, LabelConfig.parse(GROWN).control("label"), trained=True)
    new = model.classifier.weight.detach()
    assert model.config.id2label == dict(enumerate(tags)) and model.num_labels == 7
    for mine, theirs in (("O", "O"), ("B-Person", "B-PER"), ("I-Location", "I-LOC")):
        assert torch.equal(new[tags.index(mine)], old[old_ids[theirs]])
    for fresh in ("B-Company", "I-Company"):
        assert not any(torch.equal(new[tags.index(fresh)], row) for row in old)


def company_tasks(seed, n):
    tasks = []
    for i, (text, spans) in enumerate(corpus(seed, n)):
        task = annotated_task(i, (text, spans))
        for item in task["annotations"][0]["result"]:
            if item["value"]["labels"] == ["Organization"]:
                item["value"]["labels"] = ["Company"]
        tasks.append(task)
    return tasks


def company_recall(backend, ctx, tasks):
    """Share of the annotated Company spans predicted exactly."""
    gold = {
        (task["id"], item["value"]["start"], item["value"]["end"])
        for task in tasks
        for item in task["annotations"][0]["result"]
        if item["value"]["labels"] == ["Company"]
    }
    found = {
        (task["id"], r.value["start"], r.value["end"])
        for task, p in zip(tasks, backend.predict(tasks, ctx), strict=True)
        for r in p.result
        if r.value["labels"] == ["Company"]
    }
    return len(gold & found) / len(gold)


def test_fit_learns_a_label_the_base_model_lacks_and_keeps_the_ones_it_has(backend, tmp_path):
    heldout = company_tasks(8, 40)
    base = make_context(backend, GROWN, media=tmp_path)
    before = backend.evaluate(heldout, base)
    assert company_recall(backend, base, heldout) == 0.0  # ORG maps to no label of GROWN
    job = make_train_job(
        backend, GROWN, company_tasks(7, 60), workdir=tmp_path / "v1", media=tmp_path
    )
    result = backend.fit(job)
    assert result is not None and result.metrics["label.examples"] == 60.0
    tuned = make_context(backend, GROWN, media=tmp_path, model_dir=job.workdir)
    after = backend.evaluate(heldout, tuned)
    assert before.metric == after.metric == "span_f1"
    assert company_recall(backend, tuned, heldout) >= 0.8
    assert after.value > before.value and after.value >= 0.9


def digest(directory):
    return {
        p.relative_to(directory): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in directory.rglob("*")
        if p.is_file()
    }


def test_fit_starts_from_the_served_version_and_writes_only_its_workdir(backend, tmp_path):
    first = make_train_job(backend, NER_CONFIG, [annotated_task(i, e) for i, e in enumerate(corpus(2, 30))],
                           workdir=tmp_path / "v1", media=tmp_path)  # fmt: skip
    assert backend.fit(first) is not None
    served = digest(first.workdir)
    # A second round barely moves (tiny learning rate): it must start from v1, not from the base.
    settings = {"learning_rate": 1e-9, "epochs": 1}
    second = make_train_job(backend, NER_CONFIG, [annotated_task(i, e) for i, e in enumerate(corpus(3, 8))],
                            workdir=tmp_path / "v2", media=tmp_path, base_dir=first.workdir, extra_params=settings)  # fmt: skip
    assert backend.fit(second) is not None
    assert digest(first.workdir) == served
    v1 = AutoModelForTokenClassification.from_pretrained(artifact_dir(first.workdir, "label"))
    v2 = AutoModelForTokenClassification.from_pretrained(artifact_dir(second.workdir, "label"))
    assert torch.allclose(v1.classifier.weight, v2.classifier.weight, atol=1e-5)
    assert sorted(p.name for p in second.workdir.iterdir()) == ["controls"]


TWO = """<View>
  <Labels name="label" toName="text"><Label value="Person" predicted_values="PER"/></Labels>
  <Labels name="place" toName="text"><Label value="Location" predicted_values="LOC"/></Labels>
  <Text name="text" value="$text"/>
</View>"""


def test_a_control_without_new_spans_keeps_its_served_model(backend, tmp_path):
    def tasks(seed, n, keep):
        out = []
        for i, (text, spans) in enumerate(corpus(seed, n)):
            task = annotated_task(i, (text, [s for s in spans if s[2] in keep]))
            for item in task["annotations"][0]["result"]:
                item["from_name"] = "place" if item["value"]["labels"] == ["Location"] else "label"
            out.append(task)
        return out

    first = make_train_job(
        backend, TWO, tasks(4, 20, {"PER", "LOC"}), workdir=tmp_path / "v1", media=tmp_path
    )
    backend.fit(first)
    assert (artifact_dir(first.workdir, "place") / "config.json").is_file()
    second = make_train_job(backend, TWO, tasks(5, 20, {"PER"}), workdir=tmp_path / "v2", media=tmp_path,
                            base_dir=first.workdir)  # fmt: skip
    result = backend.fit(second)
    assert "label.examples" in result.metrics and "place.examples" not in result.metrics
    assert digest(artifact_dir(second.workdir, "place")) == digest(
        artifact_dir(first.workdir, "place")
    )


def test_too_few_examples_train_nothing(backend, tmp_path):
    few = [annotated_task(i, e) for i, e in enumerate(corpus(6, 3))]
    assert (
        backend.fit(
            make_train_job(backend, NER_CONFIG, few, workdir=tmp_path / "a", media=tmp_path)
        )
        is None
    )
    blank = [annotated_task(i, (text, [])) for i, (text, _) in enumerate(corpus(6, 10))]
    assert (
        backend.fit(
            make_train_job(backend, NER_CONFIG, blank, workdir=tmp_path / "b", media=tmp_path)
        )
        is None
    )


def test_hypertext_annotations_train_a_model_from_scratch(tiny_dir, tiny_training, tmp_path):
    backend = NerBackend(
        NerBackend.load_settings(model=str(tiny_dir), **{**tiny_training, "epochs": 15})
    )
    backend.load()
    heldout = [html_task(1000 + i, e) for i, e in enumerate(corpus(9, 30))]
    before = backend.evaluate(heldout, make_context(backend, HTML_CONFIG, media=tmp_path)).value
    train = [html_task(i, e) for i, e in enumerate(corpus(10, 120))]
    job = make_train_job(backend, HTML_CONFIG, train, workdir=tmp_path / "v1", media=tmp_path)
    assert backend.fit(job) is not None
    after = backend.evaluate(
        heldout, make_context(backend, HTML_CONFIG, media=tmp_path, model_dir=job.workdir)
    ).value
    assert before < 0.2 and after >= 0.8, (before, after)


@pytest.mark.parametrize("name", ["label", "a/b", "..", "Ünïcode name"])
def test_artifact_dirs_stay_inside_the_version(tmp_path, name):
    path = artifact_dir(tmp_path, name)
    assert path.resolve().is_relative_to((tmp_path / "controls").resolve())
    assert path.name not in ("", ".", "..")
