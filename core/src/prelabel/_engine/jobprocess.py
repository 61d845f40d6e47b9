"""One training job in its own process: ``python -m prelabel._engine.jobprocess JOB_ID OUT``.

Started by ``prelabel worker`` (:class:`prelabel._engine.worker.ChildJobs`), which has already
claimed the job and heartbeats it. This process builds the runtime, loads the backend, runs
the job and writes ``{"result": …}`` or ``{"error": "Type: message"}`` to ``OUT``; the worker
records it. The backend's memory goes back to the system when the process exits.

It runs with the training share of the cores (``PRELABEL_TRAIN_THREADS``) and a lower CPU
priority than the server (the worker lowers it before the exec), so that requests keep
their speed while a model trains (:mod:`prelabel.threads`).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from prelabel._engine.runtime import build_runtime
from prelabel._logging import setup_logging

log = logging.getLogger("prelabel.jobprocess")


def main(argv: list[str]) -> int:
    """Run job ``argv[0]`` and write the outcome to ``argv[1]``."""
    job_id, out = argv
    setup_logging()
    answer: dict[str, Any]
    try:
        runtime = build_runtime(role="train")
        runtime.backend.load()
        answer = {"result": runtime.run_job(runtime.queue.get(job_id))}
    except Exception as exc:
        log.exception("Job %s failed", job_id)
        answer = {"error": f"{type(exc).__name__}: {exc}"}
    tmp = Path(f"{out}.tmp")
    tmp.write_text(json.dumps(answer, default=str))
    tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
