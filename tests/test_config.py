"""The labeling-config parser against Label Studio's own templates and hand-written configs.

Every expected value below was written by reading the XML, never produced by the parser.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import pytest

from prelabel.config import Control, Label, LabelConfig, LabelMap, ObjectTag
from prelabel.errors import BadRequest, UnsupportedConfig

TEMPLATES = Path(str(resources.files("prelabel.testing") / "fixtures" / "ls-templates"))
TEMPLATE_FILES = sorted(TEMPLATES.glob("*.xml"))


def template(name: str) -> LabelConfig:
    return LabelConfig.parse((TEMPLATES / f"{name}.xml").read_text())


def names(labels: tuple[Label, ...]) -> tuple[str, ...]:
    return tuple(label.name for label in labels)


# --- the whole template corpus --------------------------------------------------------------


def test_corpus_is_complete() -> None:
    assert len(TEMPLATE_FILES) == 69


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.stem)
def test_template_parses_and_links(path: Path) -> None:
    xml = path.read_text()
    config = LabelConfig.parse(xml)

    assert config.xml == xml
    assert config.hash == hashlib.sha256(xml.encode()).hexdigest()
    assert config.controls, "every LS template has at least one control"
    for control in config.controls.values():
        assert control.to_name
        # Every toName in the 69 templates names an object (a Chat names itself: it is both).
        assert {n for n in control.to_name if n not in config.objects} == set()
        assert tuple(obj.name for obj in control.objects) == control.to_name
        assert all(label.name for label in control.labels)


def test_corpus_covers_the_control_types() -> None:
    found = {
        control.type
        for path in TEMPLATE_FILES
        for control in LabelConfig.parse(path.read_text()).controls.values()
    }
    assert found == {
        "brushlabels",
        "chatmessage",
        "choices",
        "hypertextlabels",
        "keypointlabels",
        "labels",
        "ocrlabels",
        "pairwise",
        "paragraphlabels",
        "polygon",
        "polygonlabels",
        "ranker",
        "rating",
        "rectangle",
        "rectanglelabels",
        "taxonomy",
        "textarea",
        "timelinelabels",
        "timeserieslabels",
        "videorectangle",
    }


# --- specific templates ---------------------------------------------------------------------


def test_object_detection() -> None:
    config = template("computer-vision__object-detection-with-bounding-boxes")

    assert list(config.controls) == ["label"]
    control = config.control("label")
    assert control.tag == "RectangleLabels"
    assert control.type == "rectanglelabels"
    assert control.to_name == ("image",)
    assert control.label_names == ("Airplane", "Car")
    assert control.labels[0].attrs == {"value": "Airplane", "background": "green"}
    assert control.labels[1].alias is None
    assert not control.multiple
    assert not control.per_region
    assert not control.smart
    assert control.model_attrs == {}
    image = ObjectTag("Image", "image", "$image", {"name": "image", "value": "$image"})
    assert control.object() == image
    assert control.object("image").value_key == "image"
    assert list(config.objects) == ["image"]
    assert config.data_keys() == {"image"}


def test_named_entity_recognition() -> None:
    config = template("natural-language-processing__named-entity-recognition")

    control = config.control("label")
    assert control.tag == "Labels"
    assert control.to_name == ("text",)
    assert control.label_names == ("PER", "ORG", "LOC", "MISC")
    assert control.labels[2].attrs["background"] == "orange"
    assert control.has_label("MISC")
    assert not control.has_label("misc")
    assert config.objects["text"].tag == "Text"
    assert config.data_keys() == {"text"}


def test_taxonomy_paths() -> None:
    control = template("natural-language-processing__taxonomy").control("taxonomy")

    assert control.tag == "Taxonomy"
    assert control.multiple
    assert control.label_names == ("Archaea", "Bacteria", "Eukarya")
    assert names(control.labels[2].children) == ("Human", "Oppossum", "Extraterrestial")
    assert control.taxonomy_paths() == (
        ("Archaea",),
        ("Bacteria",),
        ("Eukarya",),
        ("Eukarya", "Human"),
        ("Eukarya", "Oppossum"),
        ("Eukarya", "Extraterrestial"),
    )


def test_text_classification_single_and_multiple() -> None:
    single = template("natural-language-processing__text-classification").control("sentiment")
    assert single.label_names == ("Positive", "Negative", "Neutral")  # wrapped in a <View>
    assert not single.multiple  # choice="single"
    assert single.taxonomy_paths() == ()

    config = template("natural-language-processing__content-moderation")
    multi = config.control("content_moderation")
    assert multi.multiple  # choice="multiple"
    assert multi.label_names == ("Toxic", "Severely Toxic", "Obscene", "Threat", "Insult", "Hate")
    assert list(config.controls) == ["content_moderation", "comments"]
    assert config.control("comments").tag == "TextArea"


def test_keypoints() -> None:
    config = template("computer-vision__keypoints")

    control = config.control("kp-1")
    assert control.type == "keypointlabels"
    assert control.to_name == ("img-1",)
    assert control.label_names == ("Face", "Nose")
    assert control.object().name == "img-1"
    assert config.data_keys() == {"img"}


def test_ocr_with_per_region_transcription() -> None:
    config = template("computer-vision__optical-character-recognition")

    assert list(config.controls) == ["label", "bbox", "poly", "transcription"]
    assert config.control("label").label_names == ("Text", "Handwriting")
    assert config.control("bbox").tag == "Rectangle"
    assert config.control("bbox").labels == ()
    assert config.control("poly").type == "polygon"
    transcription = config.control("transcription")
    assert transcription.per_region
    assert not config.control("label").per_region
    assert transcription.attrs["displayMode"] == "region-list"
    assert [c.name for c in config.controls_of("textarea", "LABELS")] == ["label", "transcription"]
    assert config.data_keys() == {"ocr"}


def test_video_object_tracking() -> None:
    config = template("videos__video-object-tracking")

    assert list(config.controls) == ["videoLabels", "box"]
    assert config.control("videoLabels").label_names == ("Man", "Woman", "Other")
    box = config.control("box")
    assert box.tag == "VideoRectangle"
    assert box.type == "videorectangle"
    assert box.object().attrs["framerate"] == "25.0"
    assert config.data_keys() == {"video"}


def test_multipage_value_list() -> None:
    config = template("computer-vision__multipage-documents")

    pdf = config.objects["pdf"]
    assert (pdf.tag, pdf.value, pdf.value_key) == ("Image", "$pages", "pages")
    assert config.control("rectangles").label_names == (
        "Title",
        "Date",
        "Author",
        "Organization",
        "Amount",
    )


def test_several_objects_per_control() -> None:
    config = template("community-contributions__breast-cancer-mammogram-classification")

    findings = config.control("findings_left")
    assert findings.to_name == ("left_cc", "right_cc", "left_mlo", "right_mlo")
    assert [obj.value for obj in findings.objects] == ["$img1", "$img3", "$img2", "$img4"]
    assert findings.object("left_mlo").value_key == "img2"
    assert findings.multiple
    assert not config.control("birads_left").multiple  # choice="single"
    assert config.data_keys() == {"img1", "img2", "img3", "img4"}
    with pytest.raises(UnsupportedConfig, match="'birads_legend'"):
        findings.object("birads_legend")  # an object of the config, not of this control


def test_literal_values_are_objects_without_data_keys() -> None:
    config = template("community-contributions__two-level-sentiment-analysis-of-x-twitter-posts")

    # <Header name="username" value="John Doe"/> has name and value: an object, like in LS.
    assert config.objects["username"].tag == "Header"
    assert config.objects["username"].value_key is None
    assert config.objects["handle"].value == "@johndoe"
    assert config.data_keys() == {"tweet"}
    # Choices with a <View><Header/></View> between its <Choice> children.
    other = config.control("other-props")
    assert other.label_names == ("Descriptive", "Emotional", "Mixed", "Ambigous", "Sarcams")
    assert other.labels[1].attrs["hint"] == "Click on it if it shows moderate to strong sentiment"


def test_dynamic_choices_value_is_not_an_object() -> None:
    config = template("ranking-and-scoring__serp-ranking")

    dynamic = config.control("dynamic_choices")
    assert dynamic.attrs["value"] == "$options"
    assert dynamic.labels == ()
    assert dynamic.multiple
    assert list(config.objects) == ["text"]
    assert config.data_keys() == {"text"}
    assert list(config.controls) == ["dynamic_choices", "relevance", "confidence"]


def test_dynamic_labels_are_flagged_and_read_from_task_data() -> None:
    config = template("computer-vision__visual-genome")
    regions = config.control("regions")
    assert regions.dynamic_labels
    assert regions.label_names == ()
    # LS accepts any label on a control whose labels come from the task.
    assert regions.accepts_label("person")
    assert not regions.accepts_label("")
    assert not regions.accepts_label(3)
    task = {
        "image": "x.jpg",
        "regions": [
            {"value": "person", "background": "red"},
            {"value": "dog", "alias": "Dog"},
            "car",
            {"value": "animal", "children": [{"value": "cat"}]},
        ],
    }
    assert regions.task_label_names(task) == ("person", "Dog", "car", "animal", "cat")
    assert regions.task_label_names({}) == ()

    static = template("natural-language-processing__text-classification").control("sentiment")
    assert not static.dynamic_labels
    assert not static.accepts_label("person")
    assert static.task_label_names({"regions": ["person"]}) == static.label_names


def test_a_chat_is_its_own_object_and_control() -> None:
    # chat_eval writes toName="chat" on the <Chat>; chatbot's <Chat> has none. Either way LS
    # (label_studio_sdk's LabelInterface) makes it an object and a control of chatmessages.
    for name in ("chat__chat_eval", "chat__chatbot"):
        config = template(name)
        chat = config.control("chat")
        assert chat.tag == "Chat"
        assert chat.type == "chatmessage"
        assert chat.to_name == ("chat",)
        assert chat.object() is config.objects["chat"]
        assert config.objects["chat"].value_key == "chat"
        assert not chat.dynamic_labels  # its value is the conversation, not labels
        assert "chat" in config.data_keys()
    assert template("chat__chat_eval").data_keys() == {"text", "chat"}
    assert [c.name for c in template("chat__chatbot").controls_of("Chat")] == ["chat"]


def test_a_chat_name_used_twice_is_still_refused() -> None:
    with pytest.raises(BadRequest, match="'chat'"):
        LabelConfig.parse(
            '<View><Chat name="chat" value="$c"/><Text name="chat" value="$t"/></View>'
        )


def test_chat_object_with_many_controls() -> None:
    config = template("chat__chatbot")

    assert list(config.objects) == ["instructions", "chat"]
    assert config.data_keys() == {"chat"}
    assert list(config.controls) == [
        "chat",
        "accuracy",
        "documentation",
        "questions_answered",
        "style",
    ]
    assert [c.per_region for c in config.controls.values()] == [False, True, True, True, True]
    assert config.control("style").multiple


def test_ranker_buckets() -> None:
    assert template("generative-ai__llm-ranker").control("rank").buckets == (
        "relevant_results",
        "biased_results",
    )
    assert template("generative-ai__visual-ranker").control("rank").buckets == ()


def test_layout_only_tags_are_ignored() -> None:
    assessment = template("generative-ai__chatbot-assessment")
    # <Rating name="likert_scale" maxRating="7"/> has no toName: neither control nor object.
    assert "likert_scale" not in assessment.controls
    assert [c.name for c in assessment.controls_of("Choices")] == [
        "fails_to_follow",
        "inappropriate_for_customer",
        "hallucination",
        "satisfies_constraint",
        "contains_sexual",
        "contains_violent",
        "encourages_violence",
        "denigrates_protected_class",
        "gives_harmful_advice",
        "expresses_opinion",
        "expresses_moral_judgment",
    ]

    ranker = template("generative-ai__llm-ranker")
    assert list(ranker.controls) == ["rank"]  # <Bucket name=…> children are not controls
    assert ranker.control("rank").object().tag == "List"

    relations = template("natural-language-processing__relation-extraction")
    assert list(relations.controls) == ["label"]  # <Relations> has no toName
    assert relations.control("label").label_names == ("Organization", "Person", "Datetime")


def test_html_attributes_are_decoded() -> None:
    control = template("audio-speech-processing__speech-transcription").control("sentiment")

    assert control.per_region
    assert control.attrs["whenLabelValue"] == "Speech"
    assert control.labels[0].attrs["html"] == (
        "<span style='font-size: 45px; vertical-align: middle;'> \U0001f600 </span>"
    )


def test_repeated_label_values_are_kept() -> None:
    control = template("ranking-and-scoring__document-retrieval").control("selection")
    assert control.label_names == ("One", "Two", "Two")


# --- hand-written configs -------------------------------------------------------------------


def test_repeater_names_are_kept_as_written() -> None:
    config = LabelConfig.parse(
        """<View>
          <Repeater on="$images" indexFlag="{{idx}}" mode="pagination">
            <Image name="page_{{idx}}" value="$images[{{idx}}].url"/>
            <Header value="$title"/>
            <RectangleLabels name="labels_{{idx}}" toName="page_{{idx}}">
              <Label value="Title"/>
              <Label value="Date"/>
            </RectangleLabels>
          </Repeater>
        </View>"""
    )

    assert list(config.objects) == ["page_{{idx}}"]
    assert config.data_keys() == {"images[{{idx}}].url"}
    control = config.control("labels_{{idx}}")
    assert control.to_name == ("page_{{idx}}",)
    assert control.object().name == "page_{{idx}}"
    assert control.label_names == ("Title", "Date")


def test_labels_attach_to_the_nearest_control() -> None:
    config = LabelConfig.parse(
        """<View>
          <Text name="text" value="$text"/>
          <Choices name="flat" toName="text" allowNested="true">
            <View><Choice value="A"><Choice value="A1"/></Choice></View>
            <Choice value="B"/>
            <Choice alias="no value"/>
          </Choices>
          <Taxonomy name="tree" toName="text">
            <Choice value="Animal" alias="animal"><View><Choice value="Cat"/></View></Choice>
            <Choice value="Plant"/>
          </Taxonomy>
          <Filter name="filter" toName="flat"/>
          <Choice value="orphan"/>
        </View>"""
    )

    assert list(config.controls) == ["flat", "tree"]
    flat = config.control("flat")
    assert flat.label_names == ("A", "A1", "B")  # nested choices flattened, valueless skipped
    assert names(flat.labels[0].children) == ("A1",)
    assert flat.taxonomy_paths() == ()
    tree = config.control("tree")
    assert tree.label_names == ("animal", "Plant")
    assert tree.taxonomy_paths() == (("animal",), ("animal", "Cat"), ("Plant",))


def test_control_attributes() -> None:
    config = LabelConfig.parse(
        """<View>
          <Image name="image" value="$image"/>
          <Text name="text" value="$text"/>
          <RectangleLabels name="boxes" toName="image" smart="true"
                           model_score_threshold="0.5" model_path="best.pt">
            <Label value="Car" predicted_values=" car, truck ,,van"/>
            <Label value="Person" alias="PER"/>
          </RectangleLabels>
          <KeyPointLabels name="points" toName="image" smartOnly="true"/>
          <TextArea name="note" toName="image , text" perregion="true"/>
          <Labels name="tags" toName="text" choice="multiple"/>
        </View>"""
    )

    boxes = config.control("boxes")
    assert boxes.smart
    assert boxes.model_attrs == {"model_score_threshold": "0.5", "model_path": "best.pt"}
    assert boxes.labels[0].predicted_values == ("car", "truck", "van")
    assert boxes.labels[1].predicted_values == ()
    assert (boxes.labels[1].value, boxes.labels[1].alias, boxes.labels[1].name) == (
        "Person",
        "PER",
        "PER",
    )
    assert boxes.label_names == ("Car", "PER")
    assert config.control("points").smart
    note = config.control("note")
    assert note.to_name == ("image", "text")
    assert [obj.name for obj in note.objects] == ["image", "text"]
    assert note.object("text").value_key == "text"
    assert note.per_region  # the LS editor reads attribute names case-insensitively
    assert config.control("tags").multiple


def test_value_key() -> None:
    def key(value: str) -> str | None:
        return ObjectTag("Text", "t", value, {}).value_key

    assert key("$text") == "text"
    assert key("$item.text") == "item.text"
    assert key("$images") == "images"
    assert key("Plain words") is None
    assert key("$a, $b") is None
    assert key("$") is None


def test_lookups_and_errors() -> None:
    config = template("computer-vision__medical-image-classification-with-bboxes")

    assert [c.name for c in config.controls_of("choices", "RectangleLabels")] == [
        "label",
        "classification",
    ]
    assert config.controls_of("Taxonomy") == []
    with pytest.raises(UnsupportedConfig, match=r"'missing'.*'label', 'classification'"):
        config.control("missing")


def test_parsed_values_are_immutable_and_hashable() -> None:
    config = template("natural-language-processing__named-entity-recognition")
    control = config.control("label")

    with pytest.raises(TypeError):
        control.attrs["toName"] = "other"  # type: ignore[index]
    with pytest.raises(TypeError):
        config.controls["x"] = control  # type: ignore[index]
    assert len({control, config.control("label"), *control.labels, *control.objects}) == 6
    assert isinstance(control, Control)
    assert template("natural-language-processing__named-entity-recognition") == config


def test_cached_returns_the_same_instance() -> None:
    xml = (TEMPLATES / "computer-vision__keypoints.xml").read_text()

    assert LabelConfig.cached(xml) is LabelConfig.cached(xml)
    assert LabelConfig.cached(xml) == LabelConfig.parse(xml)
    assert LabelConfig.cached(xml + " ") is not LabelConfig.cached(xml)
    with pytest.raises(BadRequest):
        LabelConfig.cached("<View>")


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE View [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<View><Text name="text" value="&lol9;"/></View>"""

EXTERNAL_ENTITY = """<!DOCTYPE View [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<View><Text name="text" value="&secret;"/></View>"""


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("  \n ", "empty", id="blank"),
        pytest.param("<View><Image name='i' value='$i'></View>", "not well-formed", id="mismatch"),
        pytest.param("not xml at all", "not well-formed", id="text"),
        pytest.param("<View/><View/>", "not well-formed", id="two-roots"),
        pytest.param("<view/>", "root element is <view>", id="lowercase-root"),
        pytest.param("<Choices name='c' toName='t'/>", "root element is <Choices>", id="root"),
        pytest.param(BILLION_LAUGHS, "DOCTYPE", id="billion-laughs"),
        pytest.param(EXTERNAL_ENTITY, "DOCTYPE", id="external-entity"),
        pytest.param(
            "<View><Text name='t' value='$a'/><Choices name='t' toName='t'/></View>",
            "'t' more than once",
            id="duplicate-name",
        ),
    ],
)
def test_bad_configs_are_bad_requests(xml: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message) as info:
        LabelConfig.parse(xml)
    assert info.value.status == 400


def test_xml_declaration_is_accepted() -> None:
    config = LabelConfig.parse('<?xml version="1.0" encoding="UTF-8"?><View/>')
    assert config.controls == {}
    assert config.data_keys() == set()


# --- LabelMap -------------------------------------------------------------------------------

MAP_CONFIG = LabelConfig.parse(
    """<View>
      <Image name="image" value="$image"/>
      <RectangleLabels name="label" toName="image">
        <Label value="Car" predicted_values="car,truck, van "/>
        <Label value="Person" alias="PER"/>
        <Label value="Bike" predicted_values="Bicycle"/>
        <Label value="Truck"/>
        <Label value="Dog"/>
        <Label value="Lorry" predicted_values="truck,Lorries"/>
      </RectangleLabels>
    </View>"""
)


def test_label_map_rules() -> None:
    model_names = ["truck", "Truck", "Car", "PER", "per", "Person", "BICYCLE", "van"]
    model_names += ["dog", "cat", "lorries"]
    label_map = LabelMap.build(MAP_CONFIG.control("label"), model_names)

    assert dict(label_map.mapping) == {
        "truck": "Car",  # 1. predicted_values, before the case-insensitive name "Truck"; first wins
        "Truck": "Truck",  # 2. exact name
        "Car": "Car",  # 2. exact name
        "PER": "PER",  # 2. the alias is the name
        "per": "PER",  # 3. name, ignoring case
        "BICYCLE": "Bike",  # 4. predicted_values, ignoring case
        "van": "Car",  # 1. predicted_values are stripped
        "dog": "Dog",  # 3.
        "lorries": "Lorry",  # 4.
    }
    # An aliased label is known by its alias: its value alone does not match.
    assert label_map.unmapped == ("Person", "cat")
    assert label_map.unreachable == ()
    assert label_map.label_names == ("Car", "PER", "Bike", "Truck", "Dog", "Lorry")
    assert len(label_map) == 9
    assert "van" in label_map
    assert "cat" not in label_map
    assert 3 not in label_map
    assert label_map.get("BICYCLE") == "Bike"
    assert label_map.get("cat") is None


def test_label_map_rule_order() -> None:
    config = LabelConfig.parse(
        """<View>
          <Text name="text" value="$text"/>
          <Choices name="c" toName="text">
            <Choice value="CAT"/>
            <Choice value="cat"/>
            <Choice value="Animal" predicted_values="DOG"/>
            <Choice value="dog"/>
          </Choices>
        </View>"""
    )

    label_map = LabelMap.build(config.control("c"), ["cat", "Dog", "DOG"])
    # Exact name beats an earlier case-insensitive one; name ignoring case beats
    # predicted_values ignoring case; exact predicted_values beats everything.
    assert dict(label_map.mapping) == {"cat": "cat", "Dog": "dog", "DOG": "Animal"}
    assert label_map.unreachable == ("CAT",)


def test_label_map_unmapped_and_unreachable() -> None:
    control = template("natural-language-processing__text-classification").control("sentiment")

    label_map = LabelMap.build(control, iter(["positive", "other", "NEGATIVE", "other", "misc"]))

    assert dict(label_map.mapping) == {"positive": "Positive", "NEGATIVE": "Negative"}
    assert label_map.unmapped == ("other", "misc")
    assert label_map.unreachable == ("Neutral",)


def test_label_map_of_dynamic_labels() -> None:
    control = template("computer-vision__visual-genome").control("regions")

    # Without the task, any name is a label LS accepts there: each maps to itself.
    anything = LabelMap.build(control, ["person", "dog"])
    assert dict(anything.mapping) == {"person": "person", "dog": "dog"}
    assert anything.unmapped == ()

    # With the task, the task's labels are the vocabulary, and the usual rules apply.
    task = {"regions": [{"value": "Person"}, {"value": "cat"}]}
    per_task = LabelMap.build(control, ["person", "dog"], task_data=task)
    assert dict(per_task.mapping) == {"person": "Person"}
    assert per_task.unmapped == ("dog",)
    assert per_task.unreachable == ("cat",)
