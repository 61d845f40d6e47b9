"""Memory of a process tree, read from /proc (Linux): what a server and everything it started use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Proc:
    pid: int
    parent: int
    command: str


def _read(pid: int) -> Proc | None:
    entry = Path("/proc") / str(pid)
    try:
        parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except (OSError, IndexError, ValueError):
        return None
    return Proc(pid, parent, command)


def tree(root: int) -> list[Proc]:
    """``root`` and every living descendant, root first."""
    procs = [p for e in Path("/proc").iterdir() if e.name.isdigit() and (p := _read(int(e.name)))]
    found = [p for p in procs if p.pid == root]
    for proc in found:  # grows while it is walked: breadth first
        found.extend(p for p in procs if p.parent == proc.pid)
    return found


def memory_mib(pid: int, field: str = "VmHWM") -> float:
    """``VmHWM`` (peak resident set) or ``VmRSS`` (now) of ``pid`` in MiB; 0 once it exited.

    VmHWM, not ``ru_maxrss``: Linux carries ru_maxrss over ``exec`` from the parent.
    """
    try:
        lines = (Path("/proc") / str(pid) / "status").read_text().splitlines()
    except OSError:
        return 0.0
    line = next((s for s in lines if s.startswith(field + ":")), None)
    return int(line.split()[1]) / 1024 if line else 0.0
