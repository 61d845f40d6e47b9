"""A project's tasks and predictions through Label Studio's REST API (LS 1.23).

* ``GET /api/tasks?project=<id>&fields=all&resolve_uri=false&page=<n>&page_size=<k>`` lists
  tasks in id order with their annotations and predictions (``{"tasks": [...], "total": n}``;
  no page-size limit unless LS sets ``TASK_API_PAGE_SIZE_MAX``; a page past the end answers
  404). ``resolve_uri=false`` keeps task data raw, as ``/predict`` gets it (LS would otherwise
  rewrite storage URIs, and with a task-data login every URL, into its own proxy URLs);
* ``POST /api/projects/<id>/import/predictions`` stores a list of
  ``{"task", "result", "score", "model_version"}`` and answers ``{"created": n}``. Community
  1.23.2 checks each against the labeling config and drops invalid ones silently (``created``
  is then smaller; its log says "Prediction validation failed"); a task id outside the project
  fails the whole call with 400. Each call recounts every task of the project, so a call
  costs ~0.2 s at 1,000 tasks before its first prediction;
* ``GET``/``PATCH /api/projects/<id>`` reads and sets the prediction selector
  (``model_version``), which LS accepts only once predictions of that version exist.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from prelabel._ls.client import LabelStudioClient
from prelabel._ls.redact import safe_url
from prelabel.errors import UpstreamError

__all__ = ["import_predictions", "iter_tasks", "project", "select_version"]

log = logging.getLogger(__name__)


def iter_tasks(
    client: LabelStudioClient, project_id: int | str, *, page_size: int = 250
) -> Iterator[tuple[list[dict[str, Any]], int | None]]:
    """The project's tasks (with ``predictions`` and ``total_annotations``), a page at a time,
    each with the project's task count as LS reports it.

    Pages are read in task-id order, so a listing resumed after an interruption sees the same
    order. LS serves a task of a page in ~3-10 ms whatever the page size; 250 keeps the first
    page quick and the pages few.
    """
    page = 1
    while True:
        response = client.send(
            "GET",
            "/api/tasks",
            params={
                "project": str(project_id),
                "fields": "all",
                "resolve_uri": "false",
                "page": page,
                "page_size": page_size,
            },
        )
        if response.status_code == 404 and page > 1:
            return  # past the last page
        if not response.is_success:
            raise UpstreamError(client.explain(response))
        body = response.json()
        tasks = body.get("tasks") if isinstance(body, Mapping) else body
        if not isinstance(tasks, list):
            raise UpstreamError(
                f"Label Studio's task list at {safe_url(response.url)} is not a list of tasks: "
                "is LABEL_STUDIO_URL really Label Studio?"
            )
        tasks = [t for t in tasks if isinstance(t, dict)]
        total = body.get("total") if isinstance(body, Mapping) else None
        if tasks:
            yield tasks, total if isinstance(total, int) else None
        if len(tasks) < page_size or (isinstance(total, int) and page * page_size >= total):
            return
        page += 1


def import_predictions(
    client: LabelStudioClient, project_id: int | str, predictions: Sequence[Mapping[str, Any]]
) -> int:
    """Store predictions (``task``, ``result``, ``score``, ``model_version``); returns how many."""
    if not predictions:
        return 0
    response = client.request(
        "POST", f"/api/projects/{project_id}/import/predictions", json=list(predictions)
    )
    created = response.json().get("created") if response.content else None
    return int(created) if isinstance(created, int) else len(predictions)


def project(client: LabelStudioClient, project_id: int | str) -> dict[str, Any]:
    """The project object (``model_version`` is its prediction selector)."""
    body = client.request("GET", f"/api/projects/{project_id}").json()
    if not isinstance(body, dict):
        raise UpstreamError(f"Label Studio's project {project_id} is not a JSON object.")
    return body


def select_version(client: LabelStudioClient, project_id: int | str, version: str) -> bool:
    """Point the project's prediction selector at ``version``; ``False`` if already there.

    Raises:
        UpstreamError: LS refused (e.g. no prediction of that version exists yet).
    """
    if project(client, project_id).get("model_version") == version:
        return False
    client.request("PATCH", f"/api/projects/{project_id}", json={"model_version": version})
    log.info("Project %s: prediction selector set to %s.", project_id, version)
    return True
