"""A loopback stand-in for the parts of Label Studio's API a project's bulk predictions use.

It keeps tasks and their predictions, pages ``GET /api/tasks`` as LS 1.23 does (404 past the
last page), stores ``POST /api/projects/<id>/import/predictions`` and, like LS, refuses to set
the project's ``model_version`` selector to a version no prediction carries. For the doctor it
answers ``/api/version`` (without credentials, as LS does), ``whoami``, the project's ML
backends and webhooks, and presigns ``s3://bucket/…`` to its own ``/bucket/…``. The real Label
Studio checks the same flows in ``tests/e2e``.
"""

from __future__ import annotations

import base64
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
        self.imported: list[int] = []  # the size of each import call
        self.fail_imports = 0  # answer 500 to this many imports first
        self.fail_page: int | None = None  # answer 500 for this page of the task list
        self.ml_backends: list[dict[str, Any]] = []  # GET /api/ml?project=7
        self.webhooks: list[dict[str, Any]] = []  # GET /api/webhooks?project=7
        self.bucket: dict[str, bytes] = {}  # s3://bucket/<key> presigned to /bucket/<key>
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
        if request.path == "/api/version":
            return _json({"release": "1.23.2"})
        if request.headers.get("Authorization") != f"Token {TOKEN}":
            return _json({"detail": "Invalid token."}, 401)
        found = self.doctor_routes(request)
        if found is not None:
            return found
        if request.path == "/api/projects/7":
            if request.method == "PATCH":
                return self.select(request.get_json())
            return _json(self.project)
        if request.path == "/api/tasks" and request.args.get("project") == "7":
            if request.args.get("resolve_uri") != "false" or request.args.get("fields") != "all":
                return _json({"detail": "the bulk listing wants raw data and predictions"}, 400)
            page, size = int(request.args["page"]), int(request.args["page_size"])
            if page == self.fail_page:
                return _json({"detail": "database is locked"}, 500)
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
            self.imported.append(len(items))
            # Like Community 1.23.2, drop what does not fit the labeling config, silently.
            valid = [i for i in items if all(r.get("from_name") != "nope" for r in i["result"])]
            for item in valid:
                task = self.tasks[item["task"]]
                task["predictions"].append({k: v for k, v in item.items() if k != "task"})
            return _json({"created": len(valid)}, 201)
        return _json({"detail": "Not found."}, 404)

    def doctor_routes(self, request: Request) -> Response | None:
        if request.path == "/api/current-user/whoami":
            return _json({"id": 3, "email": "ann@example.com", "active_organization": 1})
        if request.path == "/api/ml" and request.args.get("project") == "7":
            return _json(self.ml_backends)
        if request.path == "/api/webhooks" and request.args.get("project") == "7":
            return _json(self.webhooks)
        if request.path.startswith("/tasks/") and request.path.endswith("/presign/"):
            uri = base64.urlsafe_b64decode(request.args["fileuri"]).decode()
            if uri.removeprefix("s3://bucket/") in self.bucket:
                return Response(status=303, headers={"Location": uri.replace("s3:/", "")})
        if request.path.startswith("/bucket/") and request.path[8:] in self.bucket:
            return Response(self.bucket[request.path[8:]])
        return None

    def select(self, body: dict[str, Any]) -> Response:
        version = body.get("model_version")
        if not any(p["model_version"] == version for p in self.predictions()):
            return _json({"model_version": [f"{version} is not a valid choice"]}, 400)
        self.project["model_version"] = version
        return _json(self.project)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
