"""Synthetic NER data and a tiny model built locally, for tests, ``prelabel check`` and benchmarks.

Nothing here downloads: the tokenizer is trained with ``tokenizers`` on the synthetic corpus and
the model is a randomly initialised two-layer BERT. Texts mix Latin, CJK, emoji and combining
marks, so every offset a model produces is checked against Python string indices.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "HTML_CONFIG",
    "NER_CONFIG",
    "TYPES",
    "Example",
    "annotated_task",
    "build_tiny_model",
    "conformance_scenarios",
    "corpus",
    "html_task",
    "span_results",
]

_LABEL_TAGS = """
    <Label value="Person" predicted_values="PER"/>
    <Label value="Organization" predicted_values="ORG"/>
    <Label value="Location" predicted_values="LOC"/>"""
#: A labeling config whose labels take the synthetic types by ``predicted_values``.
NER_CONFIG = f"""<View>
  <Labels name="label" toName="text">{_LABEL_TAGS}
  </Labels>
  <Text name="text" value="$text"/>
</View>"""
#: The same labels on a HyperText object.
HTML_CONFIG = f"""<View>
  <HyperTextLabels name="label" toName="text">{_LABEL_TAGS}
  </HyperTextLabels>
  <HyperText name="text" value="$html"/>
</View>"""

TYPES = ("PER", "ORG", "LOC")
_LABELS = {"PER": "Person", "ORG": "Organization", "LOC": "Location"}
#: What each type's mentions are drawn from.
NAMES: Mapping[str, tuple[str, ...]] = {
    "PER": (
        "Anna Schmidt", "Ravi Patel", "José Álvarez", "Zoë Dubois", "Ma\u0301ria Souza",
        "王伟", "Kenji Sato", "Olga Ivanova", "Amara Okafor", "Liam O'Brien",
    ),
    "ORG": (
        "Acme Corp", "Globex", "Initech", "Umbrella Labs", "Tyrell", "東京電力",
        "Stark Industries", "Wayne Enterprises", "Hooli", "Cyberdyne 🤖",
    ),
    "LOC": (
        "Berlin", "Paris", "東京", "São Paulo", "Nairobi", "Reykjavík", "Lima",
        "Zürich", "Kraków", "Montréal",
    ),
}  # fmt: skip
_TEMPLATES = (
    "{PER} works for {ORG} in {LOC} .",
    "Yesterday {PER} flew to {LOC} 🎉 to meet {PER} .",
    "{ORG} opened an office in {LOC} , said {PER} .",
    "In {LOC} , {ORG} hired {PER} and {PER} .",
    "{PER} {PER} visited {LOC} .",
    "The weather in {LOC} was fine ☀️ all week .",
    "Nothing happened today , the report says .",
    "{ORG} and {ORG} signed a deal ✍️ .",
)

#: A text and its entities as ``(start, end, type)`` in code points, end exclusive.
Example = tuple[str, list[tuple[int, int, str]]]


def sentence(rng: random.Random) -> Example:
    """One synthetic sentence with its entities."""
    template = rng.choice(_TEMPLATES)
    parts: list[str] = []
    spans: list[tuple[int, int, str]] = []
    position = 0
    for word in template.split(" "):
        kind = word[1:-1] if word.startswith("{") and word.endswith("}") else None
        text = rng.choice(NAMES[kind]) if kind else word
        if parts:
            position += 1
        if kind:
            spans.append((position, position + len(text), kind))
        parts.append(text)
        position += len(text)
    return " ".join(parts), spans


def corpus(seed: int, n: int, sentences: int = 1) -> list[Example]:
    """``n`` texts of ``sentences`` synthetic sentences each, reproducible from ``seed``."""
    rng = random.Random(seed)
    out: list[Example] = []
    for _ in range(n):
        text, spans = "", list[tuple[int, int, str]]()
        for _ in range(sentences):
            part, found = sentence(rng)
            offset = len(text) + (1 if text else 0)
            text = f"{text} {part}" if text else part
            spans.extend((s + offset, e + offset, kind) for s, e, kind in found)
        out.append((text, spans))
    return out


def span_results(
    text: str,
    spans: Sequence[tuple[int, int, str]],
    labels: Mapping[str, str] | None = None,
    *,
    from_name: str = "label",
    to_name: str = "text",
) -> list[dict[str, Any]]:
    """LS ``labels`` results for ``spans``; ``labels`` renames types (default: Person…)."""
    names = labels or _LABELS
    return [
        {
            "id": f"r{i}",
            "from_name": from_name,
            "to_name": to_name,
            "type": "labels",
            "value": {"start": s, "end": e, "text": text[s:e], "labels": [names[kind]]},
        }
        for i, (s, e, kind) in enumerate(spans)
    ]


def annotated_task(task_id: int, example: Example, key: str = "text") -> dict[str, Any]:
    """An LS task with one submitted annotation of ``example``'s entities."""
    text, spans = example
    return {
        "id": task_id,
        "data": {key: text},
        "annotations": [
            {
                "id": task_id * 10,
                "result": span_results(text, spans),
                "was_cancelled": False,
                "created_at": "2026-01-01T00:00:00Z",
            }
        ],
    }


def build_tiny_model(
    directory: Path,
    *,
    types: Sequence[str] = (*TYPES, "MISC"),
    max_positions: int = 64,
    hidden: int = 32,
    seed: int = 0,
) -> Path:
    """Save a random two-layer BERT token classifier and its tokenizer into ``directory``.

    The WordPiece vocabulary is learned from the synthetic corpus (cased, punctuation split,
    CJK characters as words, like BERT's). ``max_positions`` small forces long texts through
    several windows. Tags are BIO over ``types`` (``MISC`` has no label in
    :data:`NER_CONFIG`, so its entities are unmapped).
    """
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertForTokenClassification, PreTrainedTokenizerFast

    from prelabel_ner.tags import bio_tags

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    texts = [text for text, _ in corpus(seed, 400)]
    tokenizer.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=600, special_tokens=special)
    )
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    assert cls_id is not None and sep_id is not None  # special tokens are in every vocabulary
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", sep_id), ("[CLS]", cls_id))
    wrapped = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_positions,
    )
    tags = bio_tags(types)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=max_positions,
        id2label=dict(enumerate(tags)),
        label2id={tag: i for i, tag in enumerate(tags)},
    )
    directory.mkdir(parents=True, exist_ok=True)
    BertForTokenClassification(config).save_pretrained(directory)
    wrapped.save_pretrained(directory)
    return directory


def html_task(task_id: int, example: Example, *, annotated: bool = True) -> dict[str, Any]:
    """An LS task whose HyperText holds ``example`` in two paragraphs split at its middle word,
    with (if ``annotated``) one annotation of its entities as the LS editor stores them."""
    from html import escape

    from prelabel_ner.hypertext import HtmlDocument

    text, spans = example
    middle = text.find(" ", len(text) // 2)
    middle = len(text) if middle < 0 else middle
    html = f"<p>{escape(text[:middle])}</p>\n<p><b>{escape(text[middle:])}</b></p>"
    task: dict[str, Any] = {"id": task_id, "data": {"html": html}}
    if not annotated:
        return task
    document = HtmlDocument.parse(html)
    shift = {i: i if i <= middle else i + 1 for i in range(len(text) + 1)}  # the "\n" node
    result = []
    for i, (start, end, kind) in enumerate(spans):
        where = document.locate(shift[start], shift[end])
        if where is None:
            continue
        value = {
            **where,
            "text": document.text[shift[start] : shift[end]],
            "hypertextlabels": [_LABELS[kind]],
        }
        result.append(
            {
                "id": f"h{i}",
                "from_name": "label",
                "to_name": "text",
                "type": "hypertextlabels",
                "value": value,
            }
        )
    task["annotations"] = [{"id": task_id * 10, "result": result, "was_cancelled": False}]
    return task


def conformance_scenarios(model: Path) -> list[Any]:
    """``prelabel check ner``: Text and HyperText NER predicted and trained with ``model``.

    Text tasks include a long text (several windows of the tiny model), an empty text and a
    task without the field.
    """
    from prelabel.testing import Scenario

    examples = corpus(11, 14)
    long_text, _ = corpus(12, 1, sentences=12)[0]
    tasks: list[dict[str, Any]] = [
        {"id": i + 1, "data": {"text": text}} for i, (text, _) in enumerate(examples[:3])
    ]
    tasks += [
        {"id": 4, "data": {"text": long_text}},
        {"id": 5, "data": {"text": ""}},
        {"id": 6, "data": {"other": "no text field"}},
    ]
    settings = {"model": str(model), "epochs": 1, "min_examples": 4}
    text = Scenario(
        label_config=NER_CONFIG,
        tasks=tasks,
        train_tasks=[annotated_task(100 + i, e) for i, e in enumerate(examples[3:])],
        settings=settings,
    )
    html = Scenario(
        label_config=HTML_CONFIG,
        tasks=[html_task(200 + i, e, annotated=False) for i, e in enumerate(examples[:3])],
        train_tasks=[html_task(300 + i, e) for i, e in enumerate(examples[3:])],
        settings=settings,
    )
    return [text, html]
