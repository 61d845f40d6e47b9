"""What ``prelabel doctor`` found, and how it is shown: one screen of text, or JSON."""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict, dataclass, field
from typing import Literal

__all__ = ["Finding", "Report", "Status"]

#: ``ok``; ``warn``: works, but something is likely to bite; ``fail``: broken, with the fix;
#: ``skip``: not checked (the reason is the summary).
Status = Literal["ok", "warn", "fail", "skip"]

_MARKS: dict[Status, tuple[str, str]] = {
    "ok": ("ok  ", "32"),  # green
    "warn": ("warn", "33"),  # yellow
    "fail": ("FAIL", "31"),  # red
    "skip": ("skip", "2"),  # dim
}
WIDTH = 100


@dataclass
class Finding:
    """The outcome of one check.

    Attributes:
        check: the check's name (``label_studio``, ``token``…).
        status: see :data:`Status`.
        summary: what was found, one line.
        fix: what to do about a ``warn`` or ``fail``.
        details: further lines (e.g. one per control of the labeling config).
    """

    check: str
    status: Status
    summary: str
    fix: str = ""
    details: list[str] = field(default_factory=list)


@dataclass
class Report:
    """The findings of one run, in the order the checks ran."""

    title: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> Finding:
        self.findings.append(finding)
        return finding

    @property
    def ok(self) -> bool:
        """No check failed."""
        return all(f.status != "fail" for f in self.findings)

    @property
    def worst(self) -> Status:
        """``fail`` if any failed, else ``warn`` if any warned, else ``ok``."""
        statuses = {f.status for f in self.findings}
        return "fail" if "fail" in statuses else "warn" if "warn" in statuses else "ok"

    def as_json(self) -> str:
        return json.dumps(
            {"title": self.title, "ok": self.ok, "checks": [asdict(f) for f in self.findings]},
            indent=2,
            ensure_ascii=False,
        )

    def as_text(self, *, color: bool = False, max_details: int = 6) -> str:
        """The report on one screen: a line per check, its fix and a few details below."""

        def paint(text: str, code: str) -> str:
            return f"\033[{code}m{text}\033[0m" if color else text

        lines = [paint(self.title, "1")]
        for finding in self.findings:
            mark, code = _MARKS[finding.status]
            lines.append(f"{paint(mark, code)}  {finding.check:<13} {finding.summary}")
            shown = finding.details[:max_details]
            if len(finding.details) > max_details:
                shown.append(f"… and {len(finding.details) - max_details} more")
            lines += [f"{' ' * 21}{d}" for d in shown]
            if finding.fix and finding.status in ("warn", "fail"):
                lines += textwrap.wrap(
                    finding.fix,
                    WIDTH,
                    initial_indent=" " * 19 + paint("→ ", code),
                    subsequent_indent=" " * 21,
                    break_on_hyphens=False,  # keeps --options and host-names whole
                )
        verdict = {"ok": "all checks passed", "warn": "works, with warnings", "fail": "broken"}
        lines.append(paint(verdict[self.worst], _MARKS[self.worst][1]))
        return "\n".join(lines)
