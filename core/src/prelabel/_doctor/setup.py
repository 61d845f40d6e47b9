"""The doctor's cheap subset, run at ``/setup``: labels and credentials, logged once.

LS calls ``/setup`` on every Data Manager page load and before every prediction batch, and
waits 3 s at most; so the verdict makes no network call, and is computed and logged once per
project, labeling config and credentials (later calls cost a set lookup).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx

from prelabel._doctor.label_studio import LOOPBACK_HOSTS
from prelabel._doctor.labels import check_labels
from prelabel._doctor.report import Finding, Report
from prelabel._ls.client import PAT_HOWTO, decode_jwt
from prelabel.backend import Backend
from prelabel.config import LabelConfig
from prelabel.project import ProjectKey
from prelabel.settings import CoreSettings

__all__ = ["SetupVerdicts", "credentials_finding"]

log = logging.getLogger("prelabel.doctor")

#: Verdicts remembered before the memory is cleared (LS projects, not requests).
REMEMBERED = 4096


def credentials_finding(
    settings: CoreSettings, hostname: str | None, access_token: str | None
) -> Finding:
    """Whether the backend can reach LS for media and annotations, without asking LS."""
    url, key = settings.label_studio_url, settings.label_studio_api_key
    problems = []
    if not url:
        if hostname and httpx.URL(hostname).host.lower() in LOOPBACK_HOSTS:
            problems.append(
                f"LABEL_STUDIO_URL is unset and LS's /setup names itself {hostname}, which is "
                "this backend's own host when it runs in a container: set LABEL_STUDIO_URL"
            )
        elif not hostname:
            problems.append("LABEL_STUDIO_URL is unset and LS sent no hostname: set it")
    if not key:
        if access_token and decode_jwt(access_token) is None:
            problems.append(
                "LABEL_STUDIO_API_KEY is unset: media are fetched with the legacy token LS "
                f"sent in /setup, which LS 1.23 refuses unless legacy tokens are on; {PAT_HOWTO}"
            )
        elif not access_token:
            problems.append(f"no API key: {PAT_HOWTO}")
    if problems:
        return Finding("credentials", "warn", "Label Studio credentials", "; ".join(problems) + ".")
    source = "LABEL_STUDIO_URL" if url else "/setup's hostname"
    token = "LABEL_STUDIO_API_KEY" if key else "/setup's token"
    return Finding("credentials", "ok", f"Label Studio from {source}, token from {token}")


class SetupVerdicts:
    """Logs each project's verdict once per labeling config and credentials. Thread-safe."""

    def __init__(self) -> None:
        self._seen: set[tuple[Any, ...]] = set()
        self._lock = threading.Lock()

    def log_once(
        self,
        backend: Backend,
        settings: CoreSettings,
        key: ProjectKey,
        config: LabelConfig,
        *,
        hostname: str | None,
        access_token: str | None,
    ) -> Report | None:
        """Log the labels and credentials findings unless logged already; returns them then."""
        ident = (str(key), config.hash, hostname, access_token)
        with self._lock:
            if ident in self._seen:
                return None
            if len(self._seen) >= REMEMBERED:
                self._seen.clear()
            self._seen.add(ident)
        report = Report(f"Project {key}: setup check (run `prelabel doctor` for the full report)")
        try:
            report.add(check_labels(backend, config))
            report.add(credentials_finding(settings, hostname, access_token))
        except Exception:
            # A verdict is advice: it must never fail the /setup LS is waiting for.
            log.exception("Could not check project %s at /setup.", key)
            return None
        level = logging.WARNING if report.worst != "ok" else logging.INFO
        log.log(level, "%s", report.as_text())
        return report
