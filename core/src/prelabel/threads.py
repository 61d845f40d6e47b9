"""How many CPU threads a process's compute libraries (torch, BLAS) may use.

The runtime resolves one count per process, for what the process does, and hands it to the
backend as :attr:`prelabel.Backend.threads`:

* a **serving worker** of ``prelabel serve`` gets ``PRELABEL_THREADS``; ``auto`` divides the
  cores among the serving workers (``--workers``, which ``serve`` exports as
  ``WEB_CONCURRENCY``), so a single worker gets every core;
* a **training job** (the process ``prelabel worker`` starts per job) gets
  ``PRELABEL_TRAIN_THREADS``; ``auto`` is half the cores, and the job runs :data:`TRAIN_NICENESS`
  steps nicer, so that while a model trains the kernel still runs requests first.

"The cores" are those the process may run on: its CPU affinity, capped by a cgroup CPU quota
(``docker run --cpus=2`` on a 16-core host means 2).

A torch backend applies the count in ``load()`` with one line, ``use_torch_threads(self.threads)``,
and again wherever a library it calls sets torch's count itself (ultralytics does whenever it
sets up a predictor, trainer or validator: ``cpu_count - 1``, one thread on a 2-core machine).

The processes ``prelabel serve`` and ``prelabel worker`` start also get
``OMP_WAIT_POLICY=PASSIVE`` unless it is set (:func:`use_passive_waits`): torch's OpenMP threads
then sleep instead of spinning while they wait for each other. Threads that spin on every
core are what collapses throughput as soon as anything else wants a core (a training job,
Label Studio, a database): the README has the figures.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Literal

from prelabel.settings import CoreSettings, load_settings

__all__ = [
    "TRAIN_NICENESS",
    "Role",
    "cpu_cores",
    "serving_workers",
    "threads_for",
    "use_passive_waits",
    "use_torch_threads",
]

#: What a process does: serve requests, or run one training job.
Role = Literal["serve", "train"]

#: How much lower (``nice`` steps) a training job's CPU priority is than the server's: on a
#: small machine a job that takes every core must not push ``/health`` past Label Studio's 1 s.
TRAIN_NICENESS = 10

_CGROUP = Path("/sys/fs/cgroup")


def _quota(cgroup: Path) -> float | None:
    """CPUs the cgroup quota allows (cgroup v2 ``cpu.max``, else v1 ``cfs_quota_us``), if set."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def cpu_cores(cgroup: Path = _CGROUP) -> int:
    """The cores this process may run on: its CPU affinity, capped by a cgroup CPU quota.

    Args:
        cgroup: where the process's cgroup files are mounted (tests pass their own).
    """
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cores = len(affinity) if affinity else (os.cpu_count() or 1)
    quota = _quota(cgroup)
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota)))
    return cores


def serving_workers(environ: Mapping[str, str] | None = None) -> int:
    """Serving processes sharing the cores: ``WEB_CONCURRENCY`` (``prelabel serve --workers``)."""
    raw = (os.environ if environ is None else environ).get("WEB_CONCURRENCY", "1")
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def threads_for(
    role: Role,
    settings: CoreSettings | None = None,
    *,
    cores: int | None = None,
    workers: int | None = None,
) -> int:
    """The thread count of a process doing ``role``.

    Args:
        role: ``serve`` (``PRELABEL_THREADS``) or ``train`` (``PRELABEL_TRAIN_THREADS``).
        settings: core settings; by default from the environment.
        cores: the cores to share; by default :func:`cpu_cores`.
        workers: serving workers sharing them; by default :func:`serving_workers`.
    """
    settings = settings or load_settings(CoreSettings)
    chosen = settings.train_threads if role == "train" else settings.threads
    if chosen != "auto":
        return chosen
    cores = cores or cpu_cores()
    if role == "train":
        return max(1, cores // 2)
    return max(1, cores // (workers or serving_workers()))


def use_torch_threads(count: int) -> None:
    """Run torch's CPU operators on ``count`` threads, from the calling thread on.

    torch keeps the count per thread (it is OpenMP's), and a thread that has not run torch
    yet starts from the last count set anywhere: so call this in ``load()``, and again in the
    thread that runs the model after anything reset it. Does nothing while torch is not
    imported (core never imports it).
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)


def use_passive_waits(environ: MutableMapping[str, str] | None = None) -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` for torch imported later here and in child processes.

    OpenMP reads it once, when torch loads it, so this runs before anything imports torch;
    a value the user set is kept (``ACTIVE`` may be faster on a machine nothing else uses).
    """
    (os.environ if environ is None else environ).setdefault("OMP_WAIT_POLICY", "PASSIVE")
