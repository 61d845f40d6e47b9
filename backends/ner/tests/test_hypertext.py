"""HyperText: the text LS's global offsets count, its XPaths, and conversions both ways.

Expected values follow the LS editor's documented behaviour (RichText's DOM manager: text nodes
and ``<br>`` counted in document order, code points, ``/p[1]/b[1]/text()[1]`` paths), not
this module's output.
"""

from hypothesis import given
from hypothesis import strategies as st

from prelabel_ner.hypertext import HtmlDocument, TextNode


def test_paths_and_offsets_of_nested_markup():
    doc = HtmlDocument.parse("<p>The <b>HTML</b></p>")
    assert doc.text == "The HTML"
    assert doc.nodes == (TextNode("/p[1]/text()[1]", 0, 4), TextNode("/p[1]/b[1]/text()[1]", 4, 8))
    assert doc.locate(4, 8) == {
        "start": "/p[1]/b[1]/text()[1]",
        "startOffset": 0,
        "end": "/p[1]/b[1]/text()[1]",
        "endOffset": 4,
        "globalOffsets": {"start": 4, "end": 8},
    }
    across = doc.locate(0, 8)
    assert (across["start"], across["startOffset"], across["end"], across["endOffset"]) == (
        "/p[1]/text()[1]",
        0,
        "/p[1]/b[1]/text()[1]",
        4,
    )


def test_br_counts_one_character_and_newlines_in_text_count_too():
    doc = HtmlDocument.parse("a<br>b\nc")
    assert doc.text == "a\nb\nc"
    assert doc.nodes == (TextNode("/text()[1]", 0, 1), TextNode("/text()[2]", 2, 5))
    assert doc.locate(1, 2) is None  # only the <br>: no text node holds it


def test_offsets_are_code_points():
    doc = HtmlDocument.parse("<p>🐱\nmeans cat</p>")
    start = doc.text.index("cat")
    assert start == 8  # the cat emoji is one character, not two UTF-16 units
    assert doc.locate(start, start + 3)["startOffset"] == 8


def test_same_name_siblings_and_whitespace_nodes_are_numbered():
    doc = HtmlDocument.parse("<div><p>a</p>\n<p>b</p></div>")
    assert [n.xpath for n in doc.nodes] == [
        "/div[1]/p[1]/text()[1]",
        "/div[1]/text()[1]",
        "/div[1]/p[2]/text()[1]",
    ]
    assert doc.text == "a\nb"


def test_sanitised_like_ls_comments_scripts_and_iframes_removed():
    doc = HtmlDocument.parse(
        "<p>x<!-- note -->y<script>var s = 1;</script>z<iframe>i</iframe>!</p>"
    )
    assert doc.text == "xyz!"
    assert [n.xpath for n in doc.nodes] == ["/p[1]/text()[1]"]


def test_html5_parsing_entities_and_implied_end_tags():
    doc = HtmlDocument.parse("<p>AT&amp;T &lt;3<p>two")
    assert doc.text == "AT&T <3two"
    assert [n.xpath for n in doc.nodes] == ["/p[1]/text()[1]", "/p[2]/text()[1]"]


def test_a_full_document_counts_only_the_body():
    doc = HtmlDocument.parse("<html><head><title>T</title></head><body><p>x</p></body></html>")
    assert doc.text == "x"
    assert doc.nodes[0].xpath == "/p[1]/text()[1]"


def test_offsets_from_global_offsets_or_xpaths():
    doc = HtmlDocument.parse("<p>The <b>HTML</b></p>")
    assert doc.offsets({"globalOffsets": {"start": 4, "end": 8}}) == (4, 8)
    by_path = {
        "start": "/p[1]/text()[1]",
        "startOffset": 0,
        "end": "/p[1]/b[1]/text()[1]",
        "endOffset": 2,
    }
    assert doc.offsets(by_path) == (0, 6)
    assert doc.offsets({"globalOffsets": {"start": 4, "end": 99}}) is None
    assert doc.offsets({**by_path, "end": "/p[9]/text()[1]"}) is None
    assert (
        doc.offsets(
            {
                "start": "/p[1]/text()[1]",
                "startOffset": True,
                "end": "/p[1]/text()[1]",
                "endOffset": 2,
            }
        )
        is None
    )


PIECES = st.lists(
    st.sampled_from(
        ["word", "🎉", "東京", "e\u0301", " ", "<b>", "</b>", "<br>", "<p>", "</p>", "&amp;"]
    ),
    min_size=1,
    max_size=30,
)


@given(PIECES, st.data())
def test_locate_and_offsets_round_trip(pieces, data):
    doc = HtmlDocument.parse("".join(pieces))
    inside = [node for node in doc.nodes if node.end > node.start]
    if not inside:
        return
    first = data.draw(st.sampled_from(inside))
    last = data.draw(st.sampled_from([n for n in inside if n.start >= first.start]))
    start = data.draw(st.integers(first.start, first.end - 1))
    end = data.draw(st.integers(max(start + 1, last.start + 1), last.end))
    where = doc.locate(start, end)
    assert where is not None
    assert doc.offsets(where) == (start, end)
    assert doc.offsets({k: v for k, v in where.items() if k != "globalOffsets"}) == (start, end)
