"""Text results: spans as Label Studio stores them, in code points (Python ``str`` indices).

LS's editor converts every Text/HyperText selection to code points before saving it
(``fixCodePointsInRange``), so the offsets of a span are exactly the Python indices of the
text it covers: an emoji, a CJK character or a Hebrew letter counts once, and a combining mark
counts as the separate code point it is. Paragraphs are the one object whose editor counts
UTF-16 units inside a phrase. Expected offsets below are counted by hand in the comments.
"""

from __future__ import annotations

import re

import pytest

from prelabel import results
from prelabel.config import Control, LabelConfig

CONFIG = LabelConfig.parse(
    """
<View>
  <Text name="text" value="$text"/>
  <HyperText name="html" value="$html"/>
  <Paragraphs name="dialogue" value="$dialogue" layout="dialogue"/>
  <Audio name="audio" value="$audio"/>
  <Labels name="ner" toName="text"><Label value="ORG"/><Label value="PER"/></Labels>
  <Labels name="html_labels" toName="html"><Label value="ORG"/></Labels>
  <Labels name="sounds" toName="audio"><Label value="Speech"/></Labels>
  <HyperTextLabels name="html_ner" toName="html"><Label value="ORG"/></HyperTextLabels>
  <ParagraphLabels name="turns" toName="dialogue"><Label value="Question"/></ParagraphLabels>
</View>
"""
)


def ctl(name: str) -> Control:
    return CONFIG.control(name)


# --- code points --------------------------------------------------------------------------------

# Each text, the quote and its (start, end) counted by hand in code points.
SCRIPTS = [
    # "Bob" after three emoji: 3 emoji + space = 4, so 4..7 (UTF-16 would say 7..10).
    pytest.param("😀😀😀 Bob", "Bob", (4, 7), id="emoji"),
    # Issue #11's example: "😀😀😀" 0-2, " Ann and " 3-11, "Bob" 12-14 → 12..15 (UTF-16: 15..18).
    pytest.param("😀😀😀 Ann and Bob", "Bob", (12, 15), id="emoji-sentence"),
    # A family emoji is 5 code points (3 people joined by 2 zero-width joiners).
    pytest.param("👩\u200d👩\u200d👧 and Ann", "Ann", (10, 13), id="zwj-sequence"),
    # "Zoë" written with a combining diaeresis: Z, o, e, U+0308 = 4 code points; " and " → 4..9.
    pytest.param("Zoe\u0308 and Ann", "Ann", (9, 12), id="combining-mark"),
    pytest.param("Zoe\u0308 and Ann", "Zoe\u0308", (0, 4), id="combining-mark-quote"),
    # CJK: 北京 (0-1), は (2), 東京 (3-4): every character is one code point and one UTF-16 unit.
    pytest.param("北京は東京より", "東京", (3, 5), id="cjk"),
    # CJK Extension B (outside the BMP, 2 UTF-16 units each): 𠮷 (0), 野 (1), 家 (2).
    pytest.param("𠮷野家で食べた", "野家", (1, 3), id="cjk-astral"),
    # Hebrew (right to left) is stored in logical order: שלום (0-3), space, עולם (5-8).
    pytest.param("שלום עולם", "עולם", (5, 9), id="rtl-hebrew"),
    # Arabic with a right-to-left mark (U+200F) before the name: مرحبا (0-4), space, RLM (6).
    pytest.param("مرحبا \u200fأحمد", "أحمد", (7, 11), id="rtl-arabic"),
]


@pytest.mark.parametrize(("text", "quote", "expected"), SCRIPTS)
def test_span_offsets_are_code_points(text: str, quote: str, expected: tuple[int, int]) -> None:
    start = text.index(quote)
    region = results.span(
        ctl("ner"), start=start, end=start + len(quote), label="PER", source_text=text
    )
    assert (region.value["start"], region.value["end"]) == expected
    assert region.value["text"] == quote


def test_span_keeps_the_offsets_it_is_given() -> None:
    # Without the task text the caller vouches for the offsets: text must be end - start long.
    region = results.span(ctl("ner"), start=4, end=7, text="Bob", label="PER", region_id="e1")
    assert region.to_ls() == {
        "id": "e1",
        "from_name": "ner",
        "to_name": "text",
        "type": "labels",
        "value": {"start": 4, "end": 7, "text": "Bob", "labels": ["PER"]},
    }


def test_span_takes_its_text_from_the_source() -> None:
    region = results.span(ctl("ner"), start=0, end=6, label="ORG", source_text="Google hired Ann")
    assert region.value == {"start": 0, "end": 6, "text": "Google", "labels": ["ORG"]}


def test_span_gets_a_fresh_id() -> None:
    first = results.span(ctl("ner"), start=0, end=3, text="Ann", label="PER")
    second = results.span(ctl("ner"), start=0, end=3, text="Ann", label="PER")
    assert first.id != second.id
    assert first.id and re.fullmatch(r"[0-9a-f]{10}", first.id)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        # "😀" is one code point: a span of 2 for it is the UTF-16 mistake the issue is about.
        ({"start": 0, "end": 2, "text": "😀"}, "is 1 characters long but the span 0..2 covers 2"),
        ({"start": 6, "end": 6, "text": ""}, "need start < end"),
        ({"start": -1, "end": 5, "text": "Googl"}, "start must be at least 0"),
        ({"start": 0.0, "end": 6, "text": "Google"}, "start must be an integer"),
        (
            {"start": 0, "end": 6, "text": "Goggle", "source_text": "Google hired Ann"},
            "text 'Goggle' is not source_text[0:6] ('Google')",
        ),
        (
            {"start": 13, "end": 20, "source_text": "Google hired Ann"},
            "span 13..20 is past the end of source_text",
        ),
        ({"start": 0, "end": 6}, "pass text= (the covered text) or source_text="),
        ({"start": 0, "end": 6, "text": "Google", "label": "LOC"}, "label 'LOC' is not"),
    ],
)
def test_span_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        results.span(ctl("ner"), **{"label": "ORG", **kwargs})


def test_span_is_only_for_text_objects() -> None:
    # A Labels control on Audio or HyperText stores seconds or XPaths, not character offsets.
    with pytest.raises(
        ValueError, match=r"span\(\) makes results on Text objects; Labels 'sounds'"
    ):
        results.span(ctl("sounds"), start=0, end=1, text="a", label="Speech")
    with pytest.raises(ValueError, match="'html', which is a HyperText"):
        results.span(ctl("html_labels"), start=0, end=1, text="a", label="ORG")
    with pytest.raises(ValueError, match=r"span\(\) makes results for Labels controls"):
        results.span(ctl("html_ner"), start=0, end=1, text="a", label="ORG")


# --- converting UTF-16 offsets --------------------------------------------------------------


def test_offsets_from_utf16() -> None:
    text = "I 😀 love Paris"
    # UTF-16: "I " 0-1, the emoji 2-3 (a surrogate pair), " love " 4-9, "Paris" 10-14.
    assert results.offsets_from_utf16(text, 10, 15) == (9, 14)
    assert text[9:14] == "Paris"
    assert results.offsets_from_utf16(text, 2, 4) == (2, 3)
    assert results.offsets_from_utf16(text, 0, 0) == (0, 0)
    assert results.offsets_from_utf16(text, 15, 15) == (14, 14)
    # Without characters outside the BMP both counts agree.
    assert results.offsets_from_utf16("北京は東京", 3, 5) == (3, 5)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (3, 4, "UTF-16 start offset 3 is inside a surrogate pair"),
        (0, 16, "UTF-16 end offset 16 is past the end of a 15-unit text"),
        (4, 2, "need start <= end"),
        (-1, 2, "start must be at least 0"),
    ],
)
def test_offsets_from_utf16_errors(start: int, end: int, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        results.offsets_from_utf16("I 😀 love Paris", start, end)


# --- HyperText -----------------------------------------------------------------------------------


def test_hypertext_span() -> None:
    region = results.hypertext_span(
        ctl("html_ner"),
        start="/p[1]/text()[1]",
        end="/p[2]/text()[1]",
        start_offset=4,
        end_offset=2,
        text="Corp\nIn",
        label="ORG",
        region_id="h1",
    )
    assert region.to_ls() == {
        "id": "h1",
        "from_name": "html_ner",
        "to_name": "html",
        "type": "hypertextlabels",
        "value": {
            "start": "/p[1]/text()[1]",
            "end": "/p[2]/text()[1]",
            "startOffset": 4,
            "endOffset": 2,
            "text": "Corp\nIn",
            "hypertextlabels": ["ORG"],
        },
    }


# One selection of "Acme" in the first paragraph.
ACME = {
    "start": "/p[1]/text()[1]",
    "end": "/p[1]/text()[1]",
    "start_offset": 0,
    "end_offset": 4,
    "text": "Acme",
    "label": "ORG",
}


def test_hypertext_span_for_a_labels_control() -> None:
    region = results.hypertext_span(ctl("html_labels"), **ACME)
    assert region.type == "labels"
    assert region.value["labels"] == ["ORG"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": ""}, "start must be a non-empty XPath"),
        ({"start_offset": 5, "end_offset": 5}, "within one node need start_offset < end_offset"),
        ({"end_offset": -1}, "end_offset must be at least 0"),
        ({"label": "PER"}, "label 'PER' is not a label of HyperTextLabels 'html_ner'"),
    ],
)
def test_hypertext_span_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        results.hypertext_span(ctl("html_ner"), **{**ACME, **kwargs})


# --- Paragraphs ----------------------------------------------------------------------------------


def test_paragraph_span_within_one_phrase() -> None:
    phrases = ["Hi there", "Where is 😀 Bob?", "At home"]
    # "Bob" is Python 11..14 of phrase 1; the editor counts UTF-16 there: the emoji is two
    # units, so it saves 12..15. Phrase indices are saved as strings.
    start = phrases[1].index("Bob")
    region = results.paragraph_span(
        ctl("turns"),
        phrases=phrases,
        start=1,
        end=1,
        start_offset=start,
        end_offset=start + 3,
        label="Question",
        region_id="p1",
    )
    assert region.to_ls() == {
        "id": "p1",
        "from_name": "turns",
        "to_name": "dialogue",
        "type": "paragraphlabels",
        "value": {
            "start": "1",
            "end": "1",
            "startOffset": 12,
            "endOffset": 15,
            "text": "Bob",
            "paragraphlabels": ["Question"],
        },
    }


def test_paragraph_span_across_phrases() -> None:
    phrases = ["Hi there", "Where is Bob?", "At home"]
    region = results.paragraph_span(
        ctl("turns"),
        phrases=phrases,
        start=0,
        end=2,
        start_offset=3,
        end_offset=2,
        label="Question",
    )
    assert region.value["text"] == "there" + "Where is Bob?" + "At"
    assert (region.value["startOffset"], region.value["endOffset"]) == (3, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": 1, "end": 0}, "need 0 <= start <= end < 2 phrases"),
        ({"end": 2}, "need 0 <= start <= end < 2 phrases"),
        ({"end_offset": 9}, "past the end of their phrases"),
        ({"start_offset": 2, "end_offset": 2, "end": 0}, "is empty"),
        ({"phrases": "Hi"}, "phrases must be a list"),
    ],
)
def test_paragraph_span_errors(kwargs: dict, message: str) -> None:
    base = {
        "phrases": ["Hi", "Bob"],
        "start": 0,
        "end": 1,
        "start_offset": 0,
        "end_offset": 3,
        "label": "Question",
    }
    with pytest.raises(ValueError, match=re.escape(message)):
        results.paragraph_span(ctl("turns"), **{**base, **kwargs})


# --- Audio ---------------------------------------------------------------------------------------


def test_audio_span_in_seconds() -> None:
    region = results.audio_span(
        ctl("sounds"), start=1.25, end=3.5, label="Speech", score=0.8, region_id="a1"
    )
    assert region.to_ls() == {
        "id": "a1",
        "from_name": "sounds",
        "to_name": "audio",
        "type": "labels",
        "value": {"start": 1.25, "end": 3.5, "channel": 0, "labels": ["Speech"]},
        "score": 0.8,
    }
    assert (
        results.audio_span(ctl("sounds"), start=0, end=1, label="Speech", channel=1).value[
            "channel"
        ]
        == 1
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": 2.0, "end": 2.0}, "need 0 <= start < end (seconds)"),
        ({"start": -0.5}, "need 0 <= start < end (seconds)"),
        ({"end": float("nan")}, "end must be finite"),
        ({"channel": -1}, "channel must be at least 0"),
        ({"label": "Noise"}, "label 'Noise' is not a label of Labels 'sounds'"),
    ],
)
def test_audio_span_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        results.audio_span(ctl("sounds"), **{"start": 0.0, "end": 1.0, "label": "Speech", **kwargs})


def test_audio_span_is_only_for_audio() -> None:
    with pytest.raises(ValueError, match=r"audio_span\(\) makes results on Audio objects"):
        results.audio_span(ctl("ner"), start=0.0, end=1.0, label="ORG")
