"""Predictions from a trained base model: exact offsets, mapping, long texts, HyperText, scores."""

import base64
import itertools
import threading
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from werkzeug.serving import make_server

from prelabel import BackendLoadError, CoreSettings, LabelConfig, MediaResolver, UnsupportedConfig
from prelabel.testing import make_context
from prelabel.testing.checks import templates
from prelabel_ner import NerBackend
from prelabel_ner.documents import Document
from prelabel_ner.hypertext import HtmlDocument
from prelabel_ner.synthetic import HTML_CONFIG, NER_CONFIG, annotated_task, corpus, html_task

# Building and training the test models takes seconds alone, minutes on a busy shared machine.
pytestmark = pytest.mark.timeout(900)

SENTENCES = [
    # An astral emoji before the entities: UTF-16 offsets would be one too large.
    ("Yesterday Anna Schmidt flew to Berlin 🎉 to meet Ravi Patel .", [(10, 22, "PER"), (31, 37, "LOC"), (48, 58, "PER")]),
    ("Cyberdyne 🤖 and Globex signed a deal ✍️ .", [(0, 11, "ORG"), (16, 22, "ORG")]),
    ("In 東京 , 東京電力 hired 王伟 and Zoë Dubois .", [(3, 5, "LOC"), (8, 12, "ORG"), (19, 21, "PER"), (26, 36, "PER")]),
    ("Ma\u0301ria Souza works for Acme Corp in Zürich .", [(0, 12, "PER"), (23, 32, "ORG"), (36, 42, "LOC")]),
]  # fmt: skip
LABELS = {"PER": "Person", "ORG": "Organization", "LOC": "Location"}


def spans(prediction):
    return [(r.value["start"], r.value["end"], r.value["labels"][0]) for r in prediction.result]


def context(backend, tmp_path, config=NER_CONFIG, **kwargs):
    return make_context(backend, config, media=tmp_path, **kwargs)


def test_entities_have_exact_code_point_offsets(backend, tmp_path):
    tasks = [{"id": i, "data": {"text": text}} for i, (text, _) in enumerate(SENTENCES)]
    predictions = backend.predict(tasks, context(backend, tmp_path))
    assert len(predictions) == len(tasks)
    found = expected = 0
    for (text, gold), prediction in zip(SENTENCES, predictions, strict=True):
        for region in prediction.result:
            value = region.value
            assert text[value["start"] : value["end"]] == value["text"]
        expected += len(gold)
        found += len(set(spans(prediction)) & {(s, e, LABELS[k]) for s, e, k in gold})
    assert found >= 0.9 * expected
    # After the emoji: in UTF-16 units this person would be at 49..59.
    assert (48, 58, "Person") in spans(predictions[0])


def test_text_span_offsets_are_code_points_not_utf16(backend):
    # Guards the builder path: LS stores Python str indices (protocol §9.2).
    control = LabelConfig.parse(NER_CONFIG).control("label")
    region = Document("🎉 Anna 🦄 Schmidt").region(control, 2, 16, "Person", 0.9)
    assert (region.value["start"], region.value["end"], region.value["text"]) == (
        2,
        16,
        "Anna 🦄 Schmidt",
    )


def test_adjacent_entities_of_one_type_stay_apart(backend, tmp_path):
    text = "Kenji Sato Olga Ivanova visited Lima ."
    (prediction,) = backend.predict([{"id": 1, "data": {"text": text}}], context(backend, tmp_path))
    assert spans(prediction) == [(0, 10, "Person"), (11, 23, "Person"), (32, 36, "Location")]


MAPPED = """<View>
  <Labels name="who" toName="text"><Label value="Human" predicted_values="PER"/></Labels>
  <Labels name="where" toName="text"><Label value="loc"/><Label value="Planet"/></Labels>
  <Text name="text" value="$text"/>
</View>"""


def test_tags_map_by_predicted_values_and_case_insensitive_name_unmapped_are_counted(
    backend, tmp_path
):
    text, _ = SENTENCES[3]
    reported: list[tuple[str, str, int]] = []
    ctx = replace(
        context(backend, tmp_path, MAPPED), on_dropped=lambda *drop: reported.append(drop)
    )
    (prediction,) = backend.predict([{"id": 1, "data": {"text": text}}], ctx)
    found = {
        (r.from_name, r.value["start"], r.value["end"], r.value["labels"][0])
        for r in prediction.result
    }
    assert found == {("who", 0, 12, "Human"), ("where", 36, 42, "loc")}
    # ORG has a label in neither control: dropped, counted once per control.
    assert backend.stats.unmapped["ORG"] == 2
    # /metrics gets the same counts, per control (PER is not a "where" label).
    assert sorted(reported) == [
        ("unmapped", "LOC", 1),
        ("unmapped", "ORG", 1),
        ("unmapped", "ORG", 1),
        ("unmapped", "PER", 1),
    ]


def test_one_prediction_per_task_always(backend, tmp_path):
    tasks = [
        {"id": 1, "data": {"text": ""}},
        {"id": 2, "data": {"other": "x"}},
        {"id": 3, "data": {"text": ["not", "a", "string"]}},
        {"id": 4, "data": {"text": "Nothing happened today , the report says ."}},
        {"id": 5, "data": {"text": SENTENCES[0][0]}},
    ]
    predictions = backend.predict(tasks, context(backend, tmp_path))
    assert [len(p.result) for p in predictions[:3]] == [0, 0, 0]
    assert predictions[3].result == [] and predictions[3].probabilities is not None
    assert len(predictions[4].result) == 3


URL_CONFIG = NER_CONFIG.replace('value="$text"/>', 'value="$text" valueType="url"/>')


def test_text_from_a_url_through_the_media_resolver(backend, tmp_path):
    text, gold = SENTENCES[2]

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        return [text.encode()]

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        media = MediaResolver(CoreSettings(model_dir=tmp_path, media_allow_hosts=["127.0.0.1"]))
        ctx = make_context(backend, URL_CONFIG, media=media)
        data_uri = "data:text/plain;base64," + base64.b64encode(text.encode()).decode()
        tasks = [
            {"id": 1, "data": {"text": f"http://127.0.0.1:{server.server_port}/doc.txt"}},
            {"id": 2, "data": {"text": data_uri}},
            {"id": 3, "data": {"text": "http://127.0.0.1:1/unreachable.txt"}},
        ]
        served, inline, broken = backend.predict(tasks, ctx)
    finally:
        server.shutdown()
        thread.join(5)
    expected = [(s, e, LABELS[k]) for s, e, k in gold]
    assert spans(served) == expected and spans(inline) == expected
    assert broken.result == []


def test_long_texts_lose_and_double_no_entity_at_window_borders(backend, tmp_path):
    text, gold = corpus(21, 1, sentences=80)[0]
    ctx = context(backend, tmp_path)
    tokens = len(backend._base(ctx.settings).tokenizer.encode(text, add_special_tokens=False).ids)
    assert tokens > 10 * 62  # the tiny model's window is 62 tokens: many borders
    (prediction,) = backend.predict([{"id": 1, "data": {"text": text}}], ctx)
    found = spans(prediction)
    assert len(found) == len(set(found))
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(found))  # no overlaps
    expected = {(s, e, LABELS[k]) for s, e, k in gold}
    recall = len(expected & set(found)) / len(expected)
    assert recall >= 0.95, recall


def test_batch_of_many_tasks_equals_one_task_at_a_time(backend, tmp_path):
    texts = [text for text, _ in corpus(31, 12, sentences=3)] + [SENTENCES[0][0]]
    tasks = [{"id": i, "data": {"text": t}} for i, t in enumerate(texts)]
    ctx = context(backend, tmp_path)
    together = backend.predict(tasks, ctx)
    for task, batched in zip(tasks, together, strict=True):
        (alone,) = backend.predict([task], ctx)
        assert spans(alone) == spans(batched)
        assert [r.score for r in alone.result] == pytest.approx(
            [r.score for r in batched.result], abs=1e-5
        )


# LS also lets a plain <Labels> control label a HyperText; its results are typed "labels".
LABELS_ON_HTML = HTML_CONFIG.replace("HyperTextLabels", "Labels")


@pytest.mark.parametrize(
    ("config", "kind"), [(HTML_CONFIG, "hypertextlabels"), (LABELS_ON_HTML, "labels")]
)
def test_hypertext_regions_in_ls_form(backend, tmp_path, config, kind):
    examples = corpus(41, 6)
    tasks = [html_task(i, e, annotated=False) for i, e in enumerate(examples)]
    predictions = backend.predict(tasks, context(backend, tmp_path, config))
    regions = [r for p in predictions for r in p.result]
    assert len(regions) >= sum(len(s) for _, s in examples) * 0.9
    for task, prediction in zip(tasks, predictions, strict=True):
        html = HtmlDocument.parse(task["data"]["html"])
        nodes = {n.xpath: n for n in html.nodes}
        for region in prediction.result:
            value = region.to_ls()["value"]
            assert region.type == kind and value[kind]
            g = value["globalOffsets"]
            assert html.text[g["start"] : g["end"]] == value["text"]
            assert nodes[value["start"]].start + value["startOffset"] == g["start"]
            assert nodes[value["end"]].start + value["endOffset"] == g["end"]
    if kind == "hypertextlabels":
        # The annotations an LS user would make score the predictions as (nearly) perfect.
        annotated = [html_task(i, e) for i, e in enumerate(examples)]
        assert backend.evaluate(annotated, context(backend, tmp_path, config)).value >= 0.9


def test_scores_rank_unfamiliar_texts_as_less_certain(backend, tmp_path):
    familiar = [text for text, spans in corpus(51, 20) if spans]
    unfamiliar = [
        "Quorblax zintered the flemwick near Oddsworth",
        "Ptarmigan yelps; Ulvaeus zest quibbles",
    ] * 5
    tasks = [{"id": i, "data": {"text": t}} for i, t in enumerate(familiar + unfamiliar)]
    predictions = backend.predict(tasks, context(backend, tmp_path))
    for prediction in predictions:
        assert prediction.probabilities is not None
        assert sum(prediction.probabilities) == pytest.approx(1.0)
        assert all(0.0 <= r.score <= 1.0 for r in prediction.result)
    confidence = [max(p.probabilities) for p in predictions]
    mean_familiar = sum(confidence[: len(familiar)]) / len(familiar)
    mean_unfamiliar = sum(confidence[len(familiar) :]) / len(unfamiliar)
    assert mean_familiar > mean_unfamiliar + 0.1, (mean_familiar, mean_unfamiliar)


def test_no_model_predicts_nothing_and_evaluates_to_zero(tmp_path):
    cold = NerBackend(NerBackend.load_settings())
    cold.load()
    annotated = [annotated_task(i, e) for i, e in enumerate(corpus(61, 5))]
    ctx = make_context(cold, NER_CONFIG, media=tmp_path)
    assert [p.result for p in cold.predict(annotated, ctx)] == [[]] * 5
    assert cold.evaluate(annotated, ctx).value == 0.0
    empty = [annotated_task(1, ("Nothing here .", []))]
    assert cold.evaluate(empty, ctx).value == 1.0  # nothing to find, nothing found


def test_evaluate_is_span_f1_on_the_judged_annotation(backend, tmp_path):
    text, gold = SENTENCES[0]
    task = annotated_task(1, (text, gold))
    ctx = context(backend, tmp_path)
    assert backend.evaluate([task], ctx).value == 1.0
    # A newer annotation that drops one span and adds a wrong one: 2 of 3 predicted match.
    newer = annotated_task(1, (text, [*gold[:2], (0, 9, "LOC")]))["annotations"][0]
    task["annotations"].append({**newer, "id": 99, "created_at": "2026-02-01T00:00:00Z"})
    assert backend.evaluate([task], ctx).value == pytest.approx(2 * 2 / (3 + 3))


# Read from the XML by hand: <Labels> on a <Text>, or <HyperTextLabels> on a <HyperText>.
ACCEPTED = {
    "community-contributions__html-ner-tagging-person-and-organization.xml",
    "community-contributions__ner-tagging-invoices-bio-format.xml",
    "computer-vision__visual-question-answering.xml",
    "conversational-ai__coreference-resolution-and-entity-linking.xml",
    "natural-language-processing__named-entity-recognition.xml",
    "natural-language-processing__question-answering.xml",
    "natural-language-processing__relation-extraction.xml",
    "structured-data-parsing__html-entity-recognition.xml",
}


def test_ls_templates_are_accepted_exactly_where_a_text_ner_control_is():
    backend = NerBackend()
    accepted = set()
    for name, xml in templates().items():
        try:
            backend.check_config(LabelConfig.parse(xml))
        except UnsupportedConfig as exc:
            assert "Labels" in str(exc), name  # the message names what is needed
        else:
            accepted.add(name)
    assert accepted == ACCEPTED


def test_missing_model_offline_says_where_to_put_it(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = NerBackend(NerBackend.load_settings(model="no-such-org/no-such-ner-model"))
    with pytest.raises(
        BackendLoadError, match=r"HF_HUB_OFFLINE=1.*hf download no-such-org/no-such-ner-model"
    ):
        backend.load()


def test_model_names_resolve_inside_the_model_dir_or_as_hub_ids(tmp_path):
    from prelabel_ner.models import resolve_source

    (tmp_path / "custom" / "ner").mkdir(parents=True)
    assert resolve_source("custom/ner", tmp_path) == str((tmp_path / "custom" / "ner").resolve())
    assert resolve_source("dslim/bert-base-NER", tmp_path) == "dslim/bert-base-NER"
    assert resolve_source(str(tmp_path / "custom"), tmp_path) == str(tmp_path / "custom")
    with pytest.raises(BackendLoadError, match="only inside PRELABEL_MODEL_DIR"):
        resolve_source("../elsewhere", tmp_path / "custom")
    with pytest.raises(BackendLoadError, match="does not exist"):
        resolve_source(str(tmp_path / "missing"), tmp_path)


def test_settings_naming_a_missing_model_directory_are_refused_at_setup(tmp_path):
    from prelabel.errors import ConfigError

    backend = NerBackend(NerBackend.load_settings(), home=tmp_path)
    backend.check_settings(NerBackend.load_settings(model="dslim/bert-base-NER"))
    with pytest.raises(ConfigError, match=r"PRELABEL_NER_MODEL.*does not exist"):
        backend.check_settings(NerBackend.load_settings(model=str(tmp_path / "missing")))
    with pytest.raises(ConfigError, match=r"PRELABEL_NER_ENCODER.*only inside"):
        backend.check_settings(NerBackend.load_settings(encoder="../outside"))


def test_an_encoder_is_refused_as_the_ner_model(tmp_path):
    from transformers import BertConfig, BertModel

    from prelabel_ner.synthetic import build_tiny_model

    tiny = build_tiny_model(tmp_path / "tiny")
    BertModel(BertConfig.from_pretrained(tiny)).save_pretrained(tmp_path / "encoder")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (tmp_path / "encoder" / name).write_bytes((tiny / name).read_bytes())
    backend = NerBackend(NerBackend.load_settings(model=str(tmp_path / "encoder")))
    with pytest.raises(BackendLoadError, match="PRELABEL_NER_ENCODER"):
        backend.load()


def test_load_puts_torch_on_the_core_thread_policy(monkeypatch, base_dir):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("PRELABEL_THREADS", "3")
        NerBackend(NerBackend.load_settings()).load()
        assert torch.get_num_threads() == 3
        backend = NerBackend(NerBackend.load_settings())
        backend.threads = 2  # what the runtime gives a training job's process
        backend.load()
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_every_setting_is_documented():
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    for name in NerBackend.Settings.model_fields:
        assert f"PRELABEL_NER_{name.upper()}" in readme, name
