"""``prelabel doctor``: the checks in order, each skipped with a reason when an earlier failed.

1. Label Studio answers from where the backend runs (``localhost`` inside a container warned);
2. the API key works (legacy or personal access token; the exact setting when LS refuses
   legacy tokens);
3. LS accepts the backend (private addresses need ``ML_BLOCK_LOCAL_IP=false`` and
   ``SSRF_PROTECTION_ENABLED=false``; for a project, LS's own view of the connection);
4. a real media URL of each kind in the project downloads;
5. the labeling config maps to the backend's labels;
6. the backend answers ``/health`` and ``/setup`` within LS's 1 s and 3 s.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prelabel._doctor.backend_http import check_backend
from prelabel._doctor.label_studio import (
    TIMEOUT_S,
    check_acceptance,
    check_reachable,
    check_token,
    in_container,
)
from prelabel._doctor.labels import check_labels
from prelabel._doctor.media import check_media
from prelabel._doctor.report import Finding, Report
from prelabel._ls import projects as ls_projects
from prelabel._ls.client import LabelStudioClient
from prelabel.backend import Backend
from prelabel.config import LabelConfig
from prelabel.errors import PrelabelError
from prelabel.media import MediaResolver
from prelabel.settings import CoreSettings

__all__ = ["DoctorOptions", "run_doctor"]

#: Tasks whose media URLs are sampled (the first page of the project).
SAMPLED_TASKS = 100


@dataclass(frozen=True)
class DoctorOptions:
    """What to check; ``None`` falls back to the settings (``LABEL_STUDIO_URL``…)."""

    ls_url: str | None = None
    token: str | None = None
    project: int | None = None
    backend_url: str | None = None


@dataclass
class _Project:
    config: LabelConfig
    tasks: list[dict[str, Any]]


def run_doctor(
    backend: Backend,
    settings: CoreSettings,
    options: DoctorOptions,
    *,
    container: bool | None = None,
) -> Report:
    """Run every check against ``backend`` (loaded) and return the report."""
    url = options.ls_url or settings.label_studio_url
    token = options.token if options.token is not None else settings.label_studio_api_key
    where = [f"{backend.name} backend", f"Label Studio {url or '?'}"]
    where += [f"project {options.project}"] if options.project is not None else []
    where += [f"backend {options.backend_url}"] if options.backend_url else []
    report = Report("prelabel doctor: " + " · ".join(where))

    finding, reachable = check_reachable(
        url, container=in_container() if container is None else container
    )
    report.add(finding)
    client = LabelStudioClient(url, token, timeout=TIMEOUT_S) if reachable and url else None
    try:
        api = _checked(report, client)
        project = _project(report, api, options.project) if api else None
        finding, ml = check_acceptance(
            api if project else None, options.project if project else None, options.backend_url
        )
        report.add(finding)
        if project is None:
            why = (
                "needs --project"
                if options.project is None
                else "needs Label Studio and a working token"
                if api is None
                else "the project is not readable"
            )
            report.add(Finding("media", "skip", why))
            report.add(Finding("labels", "skip", why + " (its labeling config)"))
        else:
            report.add(_media(settings, api, project))
            report.add(check_labels(backend, project.config))
        auth = None
        if settings.basic_auth_user and settings.basic_auth_pass:
            auth = (settings.basic_auth_user, settings.basic_auth_pass)
        report.add(
            check_backend(
                options.backend_url,
                schema=project.config.xml if project else None,
                extra_params=(ml or {}).get("extra_params"),
                hostname=url,
                auth=auth,
            )
        )
    finally:
        if client is not None:
            client.close()
    return report


def _checked(report: Report, client: LabelStudioClient | None) -> LabelStudioClient | None:
    """The client if its token works (the token finding is added either way)."""
    if client is None:
        report.add(Finding("token", "skip", "Label Studio is not reachable"))
        return None
    finding, works = check_token(client)
    report.add(finding)
    return client if works else None


def _project(report: Report, api: LabelStudioClient, project_id: int | None) -> _Project | None:
    if project_id is None:
        return None
    try:
        info = ls_projects.project(api, project_id)
        config = LabelConfig.cached(str(info.get("label_config") or ""))
        first = next(ls_projects.iter_tasks(api, project_id, page_size=SAMPLED_TASKS), None)
    except PrelabelError as exc:
        report.add(Finding("project", "fail", f"cannot read project {project_id}", str(exc)))
        return None
    return _Project(config, first[0] if first else [])


def _media(settings: CoreSettings, api: LabelStudioClient | None, project: _Project) -> Finding:
    # A scratch cache: a file downloaded before proves nothing about today's credentials.
    with tempfile.TemporaryDirectory(prefix="prelabel-doctor-") as scratch:
        resolver = MediaResolver(
            settings.model_copy(update={"model_dir": Path(scratch)}), client=api
        )
        try:
            return check_media(project.config, project.tasks, resolver)
        finally:
            resolver.close()
