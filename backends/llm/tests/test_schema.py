"""The answer format derived from label configs: schema, validation, canonical values."""

from __future__ import annotations

import pytest

from prelabel import UnsupportedConfig
from prelabel.config import LabelConfig
from prelabel_llm import LlmBackend
from prelabel_llm.schema import AnswerFormat, InvalidAnswer, find_quote

CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="topics" toName="text" choice="multiple">
    <Choice value="Sport"/><Choice value="Politics" alias="POL"/>
  </Choices>
  <Rating name="stars" toName="text" maxRating="4"/>
  <Number name="year" toName="text" min="1900" max="2100"/>
  <Taxonomy name="tax" toName="text">
    <Choice value="Animal"><Choice value="Cat"/></Choice><Choice value="Plant"/>
  </Taxonomy>
  <TextArea name="summary" toName="text"/>
  <TextArea name="prompt" toName="text"/>
  <Choices name="dynamic" toName="text" value="$options"/>
</View>"""


def fmt() -> AnswerFormat:
    # A task without options: the choices from task data have nothing to offer, so no key.
    return AnswerFormat.from_config(LabelConfig.parse(CONFIG), skip=["prompt"]).for_task({})


GOOD = {
    "topics": ["POL", "Sport"],
    "stars": 3,
    "year": 1999.5,
    "tax": ["Animal > Cat", "Plant"],
    "summary": " short ",
}


def test_schema_follows_the_controls():
    schema = fmt().schema()
    assert schema["required"] == ["topics", "stars", "year", "tax", "summary"]
    props = schema["properties"]
    # Aliases are what LS stores, so they are the vocabulary.
    assert props["topics"]["items"]["enum"] == ["Sport", "POL"]
    assert (props["stars"]["minimum"], props["stars"]["maximum"]) == (1, 4)
    assert (props["year"]["minimum"], props["year"]["maximum"]) == (1900.0, 2100.0)
    assert props["tax"]["items"]["enum"] == ["Animal", "Animal > Cat", "Plant"]
    assert props["summary"]["type"] == "string"


def test_a_valid_answer_gives_canonical_values_and_regions():
    values = fmt().parse(GOOD, {})
    assert values == {
        "topics": ("POL", "Sport"),
        "stars": 3,
        "year": 1999.5,
        "tax": (("Animal", "Cat"), ("Plant",)),
        "summary": "short",
    }
    regions = fmt().regions(values, {}, {"stars": 0.5})
    assert [(r.type, dict(r.value), r.score) for r in regions] == [
        ("choices", {"choices": ["POL", "Sport"]}, None),
        ("rating", {"rating": 3}, 0.5),
        ("number", {"number": 1999.5}, None),
        ("taxonomy", {"taxonomy": [["Animal", "Cat"], ["Plant"]]}, None),
        ("textarea", {"text": ["short"]}, None),
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"topics": ["Politics"]}, "'Politics' is not one of"),  # the value, not the alias
        ({"topics": []}, "pick at least one"),
        ({"topics": ["Sport", "Sport"]}, "choices repeat"),
        ({"stars": 5}, "5 is out of range"),
        ({"stars": True}, "must be a number"),
        ({"stars": 2.5}, "must be an integer"),
        ({"year": 1800}, "below min=1900"),
        ({"tax": ["Cat"]}, "'Cat' is not a taxonomy path"),
        ({"summary": 3}, "must be a string"),
        ({"extra": 1}, "unexpected keys ['extra']"),
    ],
)
def test_invalid_answers_are_rejected_with_the_reason(change, reason):
    with pytest.raises(InvalidAnswer, match=reason.replace("[", r"\[").replace("]", r"\]")):
        fmt().parse({**GOOD, **change}, {})


def test_a_missing_key_is_rejected():
    answer = dict(GOOD)
    del answer["stars"]
    with pytest.raises(InvalidAnswer, match="missing key 'stars'"):
        fmt().parse(answer, {})


def test_choices_from_task_data_are_each_tasks_own():
    every = AnswerFormat.from_config(LabelConfig.parse(CONFIG), skip=["prompt"])
    assert [c.name for c in every.controls][-1] == "dynamic"
    task = every.for_task({"options": [{"value": "Red"}, {"value": "Blue", "alias": "B"}]})
    assert task.schema()["properties"]["dynamic"]["enum"] == ["Red", "B"]
    answer = {**GOOD, "dynamic": "B"}
    values = task.parse(answer, {})
    assert values["dynamic"] == "B"
    [region] = [r for r in task.regions(values, {}, {}) if r.from_name == "dynamic"]
    assert dict(region.value) == {"choices": ["B"]}
    with pytest.raises(InvalidAnswer, match="'Green' is not one of"):
        task.parse({**GOOD, "dynamic": "Green"}, {})
    # Another task offers other choices.
    other = every.for_task({"options": ["Green"]})
    assert other.parse({**GOOD, "dynamic": "Green"}, {})["dynamic"] == "Green"


def test_quotes_match_whole_words_only():
    assert find_quote("US and USA, US.", "US") == [(0, 2), (12, 14)]
    assert find_quote("(a) (a)", "(a)") == [(0, 3), (4, 7)]
    assert find_quote("nothing", "else") == []


def test_configs_with_nothing_to_fill_are_refused():
    audio = '<View><Audio name="a" value="$audio"/><TextArea name="t" toName="a"/></View>'
    with pytest.raises(UnsupportedConfig, match="llm backend fills"):
        LlmBackend().check_config(LabelConfig.parse(audio))
