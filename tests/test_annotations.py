"""The one rule for which annotation a task is judged by, and stable hash splits."""

import hashlib

from prelabel.annotations import hash_bucket, judged_annotation, judged_result, unannotated


def _ann(ident, result, *, updated=None, created=None, cancelled=False):
    return {
        "id": ident,
        "result": result,
        "updated_at": updated,
        "created_at": created,
        "was_cancelled": cancelled,
    }


def test_the_latest_update_wins_over_the_first_annotation():
    old = _ann(1, [{"from_name": "a"}], created="2026-01-01T00:00:00Z")
    new = _ann(
        2, [{"from_name": "b"}], created="2026-01-01T00:00:00Z", updated="2026-02-01T00:00:00Z"
    )
    assert judged_annotation({"annotations": [old, new]}) is new
    assert judged_annotation({"annotations": [new, old]}) is new


def test_a_cancelled_annotation_never_counts_even_when_newest():
    kept = _ann(1, [{"from_name": "a"}], created="2026-01-01T00:00:00Z")
    skipped = _ann(2, [], created="2026-03-01T00:00:00Z", cancelled=True)
    assert judged_result({"annotations": [kept, skipped]}) == [{"from_name": "a"}]
    assert judged_annotation({"annotations": [skipped]}) is None


def test_equal_timestamps_fall_back_to_the_higher_id():
    a = _ann(7, [{"from_name": "seven"}], created="2026-01-01T00:00:00Z")
    b = _ann(9, [{"from_name": "nine"}], created="2026-01-01T00:00:00Z")
    assert judged_result({"annotations": [b, a]}) == [{"from_name": "nine"}]


def test_no_or_malformed_annotations_give_an_empty_result():
    assert judged_result({}) == []
    assert judged_result({"annotations": "oops"}) == []
    assert judged_result({"annotations": [{"id": 1, "result": "not a list"}]}) == []
    assert judged_result({"annotations": [{"id": 1, "result": [3, {"x": 1}]}]}) == [{"x": 1}]


def test_unannotated_drops_annotations_and_predictions_only():
    task = {"id": 1, "data": {"t": "x"}, "annotations": [1], "predictions": [2], "meta": {}}
    assert unannotated([task]) == [{"id": 1, "data": {"t": "x"}, "meta": {}}]
    assert task["annotations"] == [1]


def test_hash_bucket_is_the_sha256_prefix_of_namespace_and_key():
    digest = hashlib.sha256(b"holdout:42").digest()
    assert hash_bucket("holdout", 42) == int.from_bytes(digest[:8], "big") / 2**64
    values = [hash_bucket("holdout", i) for i in range(2000)]
    assert all(0.0 <= v < 1.0 for v in values)
    share = sum(v < 0.2 for v in values) / len(values)
    assert 0.16 < share < 0.24
    other = [hash_bucket("control", i) < 0.2 for i in range(2000)]
    overlap = sum(a and b for a, b in zip((v < 0.2 for v in values), other, strict=True))
    assert overlap < 0.08 * 2000  # independent namespaces: about 4 % land in both
