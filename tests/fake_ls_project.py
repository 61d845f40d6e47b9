"""A loopback stand-in for the parts of Label Studio's API a project's bulk predictions use.

It keeps tasks and their predictions, pages ``GET /api/tasks`` as LS 1.23 does (404 past the
last page), stores ``POST /api/projects/<id>/import/predictions`` and, like LS, refuses to set
the project's ``model_version`` selector to a version no prediction carries. The real Label
Studio checks the same flows in ``tests/e2e``.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from werkzeug.wrappers import Request, Response

TOKEN = "0123456789abcdef0123456789abcdef01234567"  # a legacy token


class FakeProjectLS:
    """One project (id 7) with ``tasks``; records every request's method and path."""

    def __init__(self, tasks: list[dict[str, Any]], *, label_config: str = "") -> None:
        self.tasks = {t["id"]: {**t, "predictions": list(t.get("predictions", []))} for t in tasks}
        self.project = {
            "id": 7,
            "created_at": "2026-11-27T19:12:44.385994Z",
            "label_config": label_config,
            "model_version": "my backend",
        }
        self.requests: list[tuple[str, str]] = []
        self.fail_imports = 0  # answer 500 to this many imports first
        self._lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            self.requests.append((request.method, request.path))
            response = self.dispatch(request)
        return response(environ, start_response)

    def predictions(self) -> list[dict[str, Any]]:
        """Every stored prediction with its task id."""
        return [{**p, "task": t} for t, task in self.tasks.items() for p in task["predictions"]]

    def dispatch(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Token {TOKEN}":
            return _json({"detail": "Authentication credentials were not provided."}, 401)
        if request.path == "/api/projects/7":
            if request.method == "PATCH":
                return self.select(request.get_json())
            return _json(self.project)
        if request.path == "/api/tasks" and request.args.get("project") == "7":
            page, size = int(request.args["page"]), int(request.args["page_size"])
            ordered = [self.tasks[i] for i in sorted(self.tasks)]
            chunk = ordered[(page - 1) * size : page * size]
            if page > 1 and not chunk:
                return _json({"detail": "Invalid page."}, 404)
            return _json({"tasks": chunk, "total": len(ordered)})
        if request.path == "/api/projects/7/import/predictions" and request.method == "POST":
            if self.fail_imports:
                self.fail_imports -= 1
                return _json({"detail": "database is locked"}, 500)
            items = request.get_json()
            for item in items:
                task = self.tasks[item["task"]]
                task["predictions"].append({k: v for k, v in item.items() if k != "task"})
            return _json({"created": len(items)}, 201)
        return _json({"detail": "Not found."}, 404)

    def select(self, body: dict[str, Any]) -> Response:
        version = body.get("model_version")
        if not any(p["model_version"] == version for p in self.predictions()):
            return _json({"model_version": [f"{version} is not a valid choice"]}, 400)
        self.project["model_version"] = version
        return _json(self.project)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
