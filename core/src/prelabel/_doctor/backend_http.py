"""The doctor's backend check: ``/health`` and ``/setup`` answer within LS's timeouts.

LS 1.23 waits 1 s for ``/health`` (``ML_TIMEOUT_HEALTH``) and 3 s for ``/setup``
(``ML_TIMEOUT_SETUP``); slower, the backend shows as Disconnected or in error and gets no
``/predict`` calls. The ``/setup`` sent is LS's, for project ``0``: a real project's
``/setup`` would replace the hostname and token LS itself sent for it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from prelabel._doctor.report import Finding

__all__ = ["HEALTH_TIMEOUT_S", "SETUP_TIMEOUT_S", "check_backend"]

HEALTH_TIMEOUT_S = 1.0
SETUP_TIMEOUT_S = 3.0
#: How long to wait before giving up (well past LS's limits, to say by how much).
PATIENCE_S = 15.0


def _call(
    http: httpx.Client, method: str, path: str, body: Any = None
) -> tuple[httpx.Response | str, float]:
    """The response (or what went wrong) and the seconds it took."""
    started = time.monotonic()
    try:
        response = http.request(method, path, json=body)
    except httpx.TimeoutException:
        return f"no answer within {PATIENCE_S:g} s", time.monotonic() - started
    except httpx.HTTPError as exc:
        return f"cannot connect ({type(exc).__name__})", time.monotonic() - started
    return response, time.monotonic() - started


def _problem(response: httpx.Response | str, elapsed: float, limit: float) -> str | None:
    if isinstance(response, str):
        return response
    if response.status_code == 401:
        return "HTTP 401: the backend wants credentials"
    if not response.is_success:
        return f"HTTP {response.status_code} {response.reason_phrase}"[:300]
    try:
        response.json()
    except ValueError:
        return "the answer is not JSON (LS counts that as a failure)"
    if elapsed > limit:
        return f"took {elapsed:.2f} s; LS gives up after {limit:g} s"
    return None


def check_backend(
    url: str | None,
    *,
    schema: str | None,
    extra_params: Mapping[str, Any] | None = None,
    hostname: str | None = None,
    auth: tuple[str, str] | None = None,
) -> Finding:
    """``GET /health`` within 1 s and, given a labeling config, ``POST /setup`` within 3 s."""
    if not url:
        return Finding("backend", "skip", "give --backend-url to time /health and /setup")
    with httpx.Client(base_url=url.rstrip("/") + "/", timeout=PATIENCE_S, auth=auth,
                      trust_env=False) as http:  # fmt: skip
        health, health_s = _call(http, "GET", "health")
        problem = _problem(health, health_s, HEALTH_TIMEOUT_S)
        if problem is not None:
            return _failed(url, "/health", problem)
        timings = f"/health {health_s * 1000:.0f} ms (LS allows 1 s)"
        if schema is None:
            return Finding("backend", "ok", timings + "; give --project to time /setup too")
        body = {
            "project": "0",
            "schema": schema,
            "hostname": hostname or "",
            "access_token": "",
            "extra_params": dict(extra_params or {}),
        }
        setup, setup_s = _call(http, "POST", "setup", body)
        problem = _problem(setup, setup_s, SETUP_TIMEOUT_S)
        if problem is not None:
            return _failed(url, "/setup", problem)
    assert isinstance(setup, httpx.Response)
    version = setup.json().get("model_version") if isinstance(setup.json(), dict) else None
    return Finding(
        "backend",
        "ok",
        f"{timings}, /setup {setup_s * 1000:.0f} ms (3 s); model_version {version}",
    )


def _failed(url: str, endpoint: str, problem: str) -> Finding:
    if "401" in problem:
        fix = (
            "The backend requires basic auth (PRELABEL_BASIC_AUTH_USER/PASS): run the doctor with "
            "the same variables set, and set that user and password in LS's model form."
        )
    elif problem.startswith("cannot connect"):
        fix = f"Start the backend (prelabel serve NAME), or fix --backend-url ({url})."
    elif "LS gives up" in problem or problem.startswith("no answer"):
        fix = (
            "Something blocks the request path: a model loading on the first request, a busy "
            "single worker (raise --threads or --workers of prelabel serve), or an overloaded "
            "machine. prelabel loads models at start; see the backend's log."
        )
    else:
        fix = "See the backend's log for the error."
    return Finding("backend", "fail", f"{endpoint} at {url}: {problem}", fix)
