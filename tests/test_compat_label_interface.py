"""``self.label_interface``: label-studio-sdk's names and return shapes over prelabel's parser.

Expected values are read off the config below by hand, with the SDK's rules: labels are the
alias else the value, ``value_name`` drops the ``$``, name filters see lowercased names.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from prelabel import compat
from prelabel.compat import (
    ControlTag,
    LabelInterface,
    LabelStudioMLBase,
    NotSupported,
    ObjectTag,
)
from prelabel.compat._store import CompatStore
from prelabel.compat.base import Binding, bound
from prelabel.errors import BadRequest, UnsupportedConfig

CONFIG = """<View>
  <Header value="Look at the photo"/>
  <Image name="photo" value="$image"/>
  <RectangleLabels name="boxes" toName="photo" model_score_threshold="0.6" model_path="cars.pt">
    <Label value="Vehicle" predicted_values="car,truck" background="red"/>
    <Label value="Person" alias="P"/>
  </RectangleLabels>
  <Text name="caption" value="$caption_url" valueType="url"/>
  <Labels name="ner" toName="caption"><Label value="LOC"/><Label value="ORG"/></Labels>
  <Choices name="Quality" toName="photo,caption" choice="multiple">
    <Choice value="Good"/><Choice value="Bad"/>
  </Choices>
  <Taxonomy name="topic" toName="caption">
    <Choice value="Sport"><Choice value="Tennis"/></Choice><Choice value="News"/>
  </Taxonomy>
  <Text name="title" value="Fixed title"/>
</View>"""


@pytest.fixture
def li() -> LabelInterface:
    return LabelInterface(CONFIG)


def test_first_tag_occurence_returns_from_name_to_name_and_the_data_key(li):
    assert li.get_first_tag_occurence("Labels", "Text") == ("ner", "caption", "caption_url")
    assert li.get_first_tag_occurence("rectanglelabels", "IMAGE") == ("boxes", "photo", "image")
    # Tuples of types; the first control in document order that labels such an object wins.
    assert li.get_first_tag_occurence(("Choices", "Labels"), ("Image", "Text")) == (
        "ner",
        "caption",
        "caption_url",
    )
    # Filters see lowercased names, as in the SDK; the result keeps the names as written.
    quality = li.get_first_tag_occurence(
        "Choices", ("Image", "Text"), name_filter=lambda name: name == "quality"
    )
    assert quality == ("Quality", "photo", "image")
    assert li.get_first_tag_occurence(
        "Choices", ("Image", "Text"), to_name_filter=lambda name: name == "caption"
    ) == ("Quality", "caption", "caption_url")
    with pytest.raises(
        ValueError, match=r"No TextArea control labeling a Text object.*Labels 'ner'"
    ):
        li.get_first_tag_occurence("TextArea", "Text")


def test_controls_carry_name_to_name_tag_attr_objects_and_labels(li):
    assert [c.name for c in li.controls] == ["boxes", "ner", "Quality", "topic"]
    boxes = li.get_control("boxes")
    assert isinstance(boxes, ControlTag)
    assert (boxes.name, boxes.tag, boxes.to_name) == ("boxes", "RectangleLabels", ["photo"])
    assert boxes.attr.get("model_path") == "cars.pt"
    assert float(boxes.attr.get("model_score_threshold")) == 0.6
    assert boxes.attr.get("model_skip") is None
    assert [obj.name for obj in boxes.objects] == ["photo"]
    assert boxes.labels == ["Vehicle", "P"]  # the alias is what LS stores
    vehicle = boxes.labels_attrs["Vehicle"]
    assert vehicle.attr["predicted_values"] == "car,truck"
    assert (vehicle.tag, vehicle.value, vehicle.parent_name) == ("Label", "Vehicle", "boxes")
    assert boxes.labels_attrs["P"].attr["value"] == "Person"
    quality = li.get_control("Quality")
    assert quality.to_name == ["photo", "caption"]
    assert [obj.tag for obj in quality.objects] == ["Image", "Text"]
    assert quality.is_multiple_choice and not li.get_control("boxes").is_multiple_choice
    assert quality.labels_attrs["Good"].tag == "Choice"
    # A Taxonomy's nested choices are labels too, in document order.
    assert li.get_control("topic").labels == ["Sport", "Tennis", "News"]


def test_objects_carry_name_tag_value_and_the_data_key(li):
    assert [o.name for o in li.objects] == ["photo", "caption", "title"]  # Header has no name
    photo = li.get_object("photo")
    assert isinstance(photo, ObjectTag)
    assert (photo.name, photo.tag, photo.value, photo.value_name) == (
        "photo",
        "Image",
        "$image",
        "image",
    )
    caption = li.get_tag("caption")
    assert (caption.value_name, caption.value_type, caption.value_is_variable) == (
        "caption_url",
        "url",
        True,
    )
    title = li.get_object("title")
    assert (title.value, title.value_is_variable, title.value_type) == ("Fixed title", False, None)


def test_interface_lists_labels_and_tag_names(li):
    assert [list(labels) for labels in li.labels] == [
        ["Vehicle", "P"],
        ["LOC", "ORG"],
        ["Good", "Bad"],
        ["Sport", "Tennis", "News"],
    ]
    assert li.control_tags == {"boxes", "ner", "Quality", "topic"}
    assert li.object_tags == {"photo", "caption", "title"}
    assert li.config == CONFIG
    assert [t.name for t in li.ner_tags] == ["ner"]
    assert [t.name for t in li.image_tags] == ["photo"]
    assert [t.name for t in li.find_tags("objects", lambda t: t.tag == "Text")] == [
        "caption",
        "title",
    ]
    assert [t.name for t in li.find_tags(match_fn=lambda t: "o" in t.name)] == [
        "photo",
        "caption",
        "boxes",
        "topic",
    ]


def test_lookups_name_what_exists_when_they_fail(li):
    assert li.get_tag("boxes") is li.get_control("boxes")
    with pytest.raises(UnsupportedConfig, match=r"no tag named 'box'.*'boxes'"):
        li.get_tag("box")
    with pytest.raises(
        UnsupportedConfig, match=r"there are 4 \('boxes', 'ner', 'Quality', 'topic'\)"
    ):
        li.get_control()
    with pytest.raises(UnsupportedConfig, match=r"No 'img' among .*objects \(there are: 'photo'"):
        li.get_object("img")
    single = LabelInterface('<View><Text name="t" value="$t"/><Labels name="l" toName="t"/></View>')
    assert single.get_control().name == "l" and single.get_object().name == "t"
    assert li.get_control("Quality").get_object("caption").name == "caption"
    with pytest.raises(UnsupportedConfig, match="Name one of control 'Quality'"):
        li.get_control("Quality").get_object()
    with pytest.raises(BadRequest, match="not well-formed"):
        LabelInterface("<View><Text")


def test_a_control_labels_regions_with_its_own_labels(li):
    region = li.get_control("boxes").label("Vehicle", x=10, y=20, width=30, height=40)
    assert region.to_ls() == {
        "id": region.id,
        "from_name": "boxes",
        "to_name": "photo",
        "type": "rectanglelabels",
        "value": {"x": 10, "y": 20, "width": 30, "height": 40, "rectanglelabels": ["Vehicle"]},
    }
    assert region.id and region.id != li.get_control("boxes").label("P").id
    quality = li.get_control("Quality").label(["Good", "Bad"], to_name="caption")
    assert (quality.to_name, quality.value) == ("caption", {"choices": ["Good", "Bad"]})
    with pytest.raises(ValueError, match=r"\['Person'\] are not labels of 'boxes'"):
        li.get_control("boxes").label("Person")  # stored as its alias, P
    with pytest.raises(ValueError, match="'nowhere' is not in Quality's toName"):
        li.get_control("Quality").label("Good", to_name="nowhere")


def test_sdk_names_without_an_equivalent_say_what_to_use(li):
    with pytest.raises(
        NotSupported, match=r"LabelInterface\.validate_prediction .*region_problems"
    ):
        li.validate_prediction({"result": []})
    with pytest.raises(NotSupported, match=r"ControlTag\.get_labels .*region\['value'\]"):
        li.get_control("boxes").get_labels([])
    with pytest.raises(NotSupported, match=r"ObjectTag\.generate_example_value"):
        li.get_object("photo").generate_example_value()
    # Feature probes see a missing attribute; names the SDK never had are plain AttributeErrors.
    assert not hasattr(li, "to_json_schema")
    with pytest.raises(AttributeError) as unknown:
        li.no_such_thing  # noqa: B018
    assert type(unknown.value) is AttributeError
    # copy and pickle probe for dunders through __getattr__: they must work.
    assert copy.deepcopy(li).get_control("boxes").labels == ["Vehicle", "P"]


def test_a_models_label_interface_follows_its_config(tmp_path):
    store = CompatStore(tmp_path)
    with bound(Binding(store, "5")):
        model = LabelStudioMLBase(project_id="5", label_config=CONFIG)
        assert model.label_interface is model.label_interface  # built once per config
        assert model.label_interface.get_control("boxes").labels == ["Vehicle", "P"]
        assert model.get_first_tag_occurence("Labels", "Text") == ("ner", "caption", "caption_url")
        other = '<View><Text name="t" value="$body"/><Choices name="c" toName="t"/></View>'
        model.use_label_config(other)
        assert model.get_first_tag_occurence("Choices", "Text") == ("c", "t", "body")
    with bound(Binding(store, "6")):
        bare = LabelStudioMLBase(project_id="6")
    with pytest.raises(ValueError, match="has no labeling config"):
        bare.label_interface  # noqa: B018


def test_the_readme_lists_every_sdk_name_the_facade_refuses():
    readme = (Path(compat.__file__).parent / "README.md").read_text()
    refused = {
        f"{owner.__name__}.{name}": name
        for owner in (LabelInterface, ControlTag, ObjectTag)
        for name in owner._unsupported
    }
    missing = [where for where, name in refused.items() if f"`{name}" not in readme]
    assert not missing, f"compat/README.md does not list: {missing}"
    for module_name in ("predict_fn", "update_fn", "init_app"):
        assert f"`{module_name}" in readme
