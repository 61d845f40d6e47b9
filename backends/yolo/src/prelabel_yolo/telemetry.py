"""Usage telemetry that ultralytics and OpenVINO send to Google, off in prelabel's processes.

* ``import openvino`` sends a usage event to Google Analytics (and each model conversion
  more) unless a consent file in the home directory declines. Without the
  ``openvino_telemetry`` package OpenVINO uses a stub that sends nothing; importing this
  module puts ``None`` in its place, so that import fails and the stub is used. It must run
  before anything imports openvino, so it happens at import (every module of this package
  that loads models imports this one).
* Ultralytics sends an analytics event after predict, train, val and export runs while its
  ``sync`` setting is on (the default) and the machine is online; :func:`turn_off` stops
  that for this process.

Only this process changes: the user's ultralytics settings file and OpenVINO consent file
are left as they are.
"""

from __future__ import annotations

import sys

__all__ = ["turn_off"]

sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]


def turn_off() -> None:
    """Stop ultralytics' analytics in this process (imports ultralytics)."""
    from ultralytics.utils.events import events

    events.enabled = False
