"""Tag schemes: reading class names, and decoding that keeps adjacent entities apart."""

import numpy as np
import pytest

from prelabel_ner.tags import Entity, Tag, TagSet, bio_tags, decode


def tagset(*names):
    return TagSet.from_labels(dict(enumerate(names)))


@pytest.mark.parametrize(
    ("name", "prefix", "kind"),
    [
        ("O", "O", ""),
        ("B-PER", "B", "PER"),
        ("I-PER", "I", "PER"),
        ("b_org", "B", "org"),
        ("E-LOC", "E", "LOC"),
        ("S-LOC", "S", "LOC"),
        ("L-LOC", "E", "LOC"),  # BILOU last = BIOES end
        ("U-LOC", "S", "LOC"),  # BILOU unit = BIOES single
        ("PER", "I", "PER"),  # IO scheme: a bare type
        ("B-I-PHASE", "B", "I-PHASE"),  # only the first prefix is a prefix
    ],
)
def test_tag_names(name, prefix, kind):
    assert Tag.parse(name) == Tag(prefix, kind)


def decoded(scheme, sequence):
    tags = tagset(*scheme)
    index = {name: i for i, name in enumerate(scheme)}
    return [(e.first, e.last, e.type) for e in decode([index[n] for n in sequence], tags)]


BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER"]
BILOU = ["O", "B-PER", "I-PER", "L-PER", "U-PER"]


def test_bio_keeps_adjacent_people_apart():
    assert decoded(BIO, ["B-PER", "I-PER", "B-PER", "I-PER", "O"]) == [(0, 1, "PER"), (2, 3, "PER")]
    assert decoded(BIO, ["B-PER", "B-PER", "B-PER"]) == [
        (0, 0, "PER"),
        (1, 1, "PER"),
        (2, 2, "PER"),
    ]


def test_bio_type_change_and_stray_inside_tags_start_entities():
    assert decoded(BIO, ["B-PER", "I-LOC", "I-LOC"]) == [(0, 0, "PER"), (1, 2, "LOC")]
    assert decoded(BIO, ["O", "I-PER", "I-PER", "O", "I-LOC"]) == [(1, 2, "PER"), (4, 4, "LOC")]


def test_bioes_and_bilou_close_on_end_and_single():
    for scheme, end, single in ((BIOES, "E-PER", "S-PER"), (BILOU, "L-PER", "U-PER")):
        assert decoded(scheme, ["B-PER", end, "B-PER", end]) == [(0, 1, "PER"), (2, 3, "PER")]
        assert decoded(scheme, [single, single, "O"]) == [(0, 0, "PER"), (1, 1, "PER")]
        # An I- after an end starts a new entity rather than reopening the closed one.
        assert decoded(scheme, ["B-PER", end, "I-PER"]) == [(0, 1, "PER"), (2, 2, "PER")]
        assert decoded(scheme, [single, "I-PER", end]) == [(0, 0, "PER"), (1, 2, "PER")]


def test_io_scheme_merges_a_run_of_one_type():
    assert decoded(["O", "PER", "LOC"], ["PER", "PER", "LOC", "O", "PER"]) == [
        (0, 1, "PER"),
        (2, 2, "LOC"),
        (4, 4, "PER"),
    ]


def test_entity_at_the_end_is_closed():
    assert decode([1, 2], tagset(*BIO)) == [Entity(0, 1, "PER")]
    assert decode([], tagset(*BIO)) == []


def test_types_and_type_probabilities():
    tags = tagset("O", "B-PER", "I-PER", "S-LOC", "B-LOC")
    assert tags.types == ("PER", "LOC")
    probabilities = np.array([[0.1, 0.2, 0.3, 0.25, 0.15]])
    assert tags.type_probabilities(probabilities)[0].tolist() == pytest.approx([0.1, 0.5, 0.4])


def test_ids_must_be_contiguous():
    with pytest.raises(ValueError, match=r"0\.\.1"):
        TagSet.from_labels({0: "O", 2: "B-PER"})


def test_bio_tags():
    assert bio_tags(["Person", "Big City"]) == [
        "O",
        "B-Person",
        "I-Person",
        "B-Big City",
        "I-Big City",
    ]
