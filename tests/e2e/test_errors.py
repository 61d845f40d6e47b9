"""Issue 14: a backend that cannot work says why, where Label Studio's user looks.

Label Studio discards an error response's body; what it shows is its HTTP client's text,
``500 Server Error: <reason phrase> for url: …``, so the reason travels in the status line.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def keyless_llm(backends, label_studio, e2e):
    """``prelabel serve llm`` with no API key anywhere (a hosted provider cannot be called)."""
    prelabel = str(Path(sys.executable).with_name("prelabel"))
    argv = [prelabel, "serve", "llm", "--host", "127.0.0.1", "--port", "{port}"]
    env = {"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""}
    backends.register("keyless-llm", e2e.BackendSpec(argv=argv, env=env))
    return backends.get("keyless-llm")


def test_connect_model_shows_why_the_llm_backend_cannot_predict(ls, keyless_llm, new_project):
    project = new_project()

    shown = ls.refused_connection(project, keyless_llm)

    # The Connect Model dialog shows this text.
    assert (
        "doesn't look like a valid ML backend. Reason: 500 Server Error: The llm backend cannot "
        "predict: no API key for openai: set PRELABEL_LLM_API_KEY (or OPENAI_API_KEY)"
    ) in shown, shown
    # A key in the project's Extra params (the form sends a JSON string) is refused: a project
    # may not choose where the server's secrets go, and the dialog says which setting to use.
    refused = ls.refused_connection(project, keyless_llm, extra_params='{"api_key": "sk-x"}')
    assert (
        "extra_params may not set api_key for the llm backend" in refused
        and "(PRELABEL_LLM_API_KEY)" in refused
        and "sk-x" not in refused
    ), refused


def test_training_on_tasks_whose_media_cannot_be_fetched_fails_and_says_why(
    ls, bad_token_backend, new_project, e2e
):
    backend = bad_token_backend
    project = new_project(e2e.URL_SENTIMENT_CONFIG, backend=backend)
    examples = e2e.corpus(4, 23)
    ids = ls.upload_text_files(project, {f"t{i}.txt": e.text for i, e in enumerate(examples)})

    for task_id, example in zip(ids, examples, strict=True):
        ls.annotate(task_id, e2e.choice(example.label))

    jobs = backend.wait_jobs(project)
    assert jobs and all(j["status"] == "failed" for j in jobs), jobs
    # The last job saw every annotated task (coalesced jobs see fewer): none could be read.
    assert jobs[0]["error"].startswith(
        "MediaError: None of the 4 annotated tasks could be loaded, so there is nothing to "
        "train on; task "
    ), jobs[0]
    assert "Label Studio answered HTTP 401" in jobs[0]["error"], jobs[0]
    error = backend.get("/health")["last_errors"][project.key]
    assert (error["source"], error["message"]) == (
        "train",
        f"job {jobs[0]['id']}: {jobs[0]['error']}",
    )
    assert backend.versions(project) == []
