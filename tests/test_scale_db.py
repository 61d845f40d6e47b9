"""The rest of the state on PostgreSQL: acceptance, the error log, compat's store, the llm
backend's store, and migrations run by many processes starting at once."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

import pytest

from prelabel._engine.acceptance import AcceptanceTracker
from prelabel._engine.errorlog import ErrorLog
from prelabel._engine.runner import ServedPrediction
from prelabel._engine.store import ProjectStore
from prelabel.compat._store import CompatStore
from prelabel.errors import ConfigError, ServiceUnavailable
from prelabel.project import ProjectKey

KEY = ProjectKey("5", 1700000000)
CHOICE = [{"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": ["A"]}}]


def test_acceptance_aggregates_are_floats_as_on_sqlite(pg_url, tmp_path):
    results = {}
    for name, database in (("sqlite", tmp_path / "prelabel.db"), ("postgresql", pg_url)):
        tracker = AcceptanceTracker(database)
        tracker.record_served(KEY, [ServedPrediction(1, "m-1", False, CHOICE, 0.9)])
        tracker.record_served(KEY, [ServedPrediction(2, "m-1", False, CHOICE, 0.4)])
        for i in (1, 2):
            tracker.record_annotation(
                KEY, {"id": i}, {"id": 10 + i, "task": i, "result": CHOICE if i == 1 else []}
            )
        results[name] = tracker.stats(KEY)
    assert results["postgresql"] == results["sqlite"]
    [stats] = results["postgresql"]
    assert (stats.annotations, stats.exact_share) == (2, 0.5)
    assert type(stats.exact_share) is float and type(stats.mean_agreement) is float


def test_error_log_and_compat_store_on_postgresql(pg_url, tmp_path):
    errors = ErrorLog(pg_url)
    errors.record(KEY, "predict", "first")
    errors.record(KEY, "setup", "second")
    assert [(e.source, e.message) for e in errors.last(ProjectKey("5"))] == [("setup", "second")]
    compat = CompatStore(tmp_path, pg_url)
    compat.set("5", "weights", {"w": [1.5]})
    assert CompatStore(tmp_path / "other", pg_url).get("5", "weights") == {"w": [1.5]}
    for i in range(3):
        compat.add_event("5", {"n": i})
    assert [e["n"] for e in compat.take_events("5")] == [0, 1, 2]
    assert compat.take_events("5") == []


def test_llm_budget_is_shared_by_replicas(pg_url):
    from prelabel._engine.engines import open_database
    from prelabel_llm.store import Store

    one, two = Store(open_database(pg_url)), Store(open_database(pg_url))
    one.add_usage("5.1", 100, 20, 0.5)
    two.add_usage("5.1", 10, 2, 0.25)
    usage = one.usage("5.1")
    assert (usage.calls, usage.tokens, usage.cost) == (2, 132, 0.75)
    two.set_prompt("5.1", "label the sentiment")
    assert one.prompt("5.1") == "label the sentiment"
    one.cache_put("k", {"answer": 1})
    assert two.cache_get("k") == {"answer": 1}


def _open(root: str, url: str) -> int:
    store = ProjectStore(Path(root), database=url)
    return store.bump(KEY, "started")


def test_many_processes_migrate_an_empty_database_at_once(pg_url, tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        counts = pool.starmap(_open, [(str(tmp_path / f"m{i}"), pg_url) for i in range(8)])
    assert sorted(counts) == list(range(1, 9))


def test_a_database_url_must_be_postgresql_and_reachable(tmp_path):
    from prelabel._engine.engines import open_database

    with pytest.raises(ConfigError, match=r"must be a PostgreSQL URL .* got scheme 'mysql'"):
        open_database("mysql://u@h/db")
    dead = open_database(f"postgresql://prelabel:secret@127.0.0.1:9/db{tmp_path.name[-6:]}")
    with pytest.raises(ServiceUnavailable) as caught:
        ProjectStore(tmp_path, database=dead)
    assert "postgresql://prelabel:***@127.0.0.1:9/" in str(caught.value)
    assert "secret" not in str(caught.value)
    dead.close()


def test_a_long_outage_heals_on_the_first_request_after_it(postgres_server, pg_url):
    from prelabel._engine.postgres import PostgresDatabase

    database = PostgresDatabase(pg_url, timeout=1.0)
    try:
        assert database.execute("SELECT 1 AS one").fetchone() == (1,)
        postgres_server.stop()
        try:
            # Long enough that retries doubling from one second would next try at 15 s.
            outage_ends = time.monotonic() + 9
            while time.monotonic() < outage_ends:
                with pytest.raises(ServiceUnavailable):
                    database.execute("SELECT 1")
        finally:
            postgres_server.start()
        assert database.execute("SELECT 2 AS two").fetchone() == (2,)
    finally:
        database.close()
