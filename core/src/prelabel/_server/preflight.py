"""What ``prelabel serve`` checks before gunicorn starts, so a mistake costs one line.

A mistake found by a gunicorn worker shows as ``Listening at…``, a traceback per worker and
exit 3. Found here, it is a :class:`~prelabel.errors.PrelabelError` that the command line
prints as one line saying what to do. In order:

0. the model directory takes writes (not read-only, not full);
1. every ``PRELABEL_*`` variable is a setting of prelabel or of an installed backend;
2. a backend is chosen, installed, importable and valid, and its settings parse;
3. the address can be bound (so a second server never starts a training worker on the
   queue of a live one);
4. the backend's ``load()`` succeeds (weights present, packages installed), run in a forked
   child as each server worker will run it: loading in this process and forking the workers
   breaks CUDA, and the master stays light.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import signal
import socket
import sys
import tempfile
import traceback

from prelabel._engine.diskcheck import require_writable
from prelabel._engine.runtime import make_backend
from prelabel.backend import Backend
from prelabel.errors import BackendLoadError, ConfigError, PrelabelError
from prelabel.registry import discover
from prelabel.settings import CoreSettings, check_environment

__all__ = ["check_address", "load_in_child", "preflight", "warn_if_open"]

log = logging.getLogger(__name__)

_PORT_HINT = "serve on another port with --port N (or PORT=N)"


def preflight(
    name: str | None, settings: CoreSettings, *, host: str, port: int, load: bool = True
) -> Backend:
    """Check everything a server worker's start needs; return the backend (not loaded here).

    Args:
        name: the backend asked for (``None``: ``PRELABEL_BACKEND`` or the only one installed).
        settings: core settings, already read from the environment.
        host: the interface to bind.
        port: the port to bind.
        load: also run ``load()`` in a child process.

    Raises:
        PrelabelError: the first problem found, as one line that says what to do.
    """
    require_writable(settings.model_dir)
    # Core names first: a misspelled PRELABEL_BACKEND must be reported as such, not as
    # "choose a backend". Variables of installed backends are checked with their backend.
    prefixes = [f"PRELABEL_{n.upper()}_" for n in discover()]
    check_environment(os.environ, {}, ignore_prefixes=prefixes)
    backend = make_backend(name, settings)
    check_address(host, port)
    if load:
        backend.home = settings.model_dir
        load_in_child(backend)
    try:
        backend.check_settings(backend.settings)
    except ConfigError as exc:
        # Projects may still bring what is missing in their extra_params; /setup says so.
        log.warning("%s", exc)
    warn_if_open(settings, host)
    return backend


def warn_if_open(settings: CoreSettings, host: str) -> None:
    """Warn when anyone who reaches the port may use the backend (see SECURITY.md)."""
    if settings.auth_enabled:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        log.warning(
            "Authentication is off and the backend listens on %s: anyone who can reach this "
            "port can connect projects, read predictions and start training. Keep it inside "
            "Label Studio's network, or set PRELABEL_BASIC_AUTH_USER/_PASS (and "
            "PRELABEL_API_TOKEN for webhooks); see SECURITY.md.",
            host or "all interfaces",
        )


def check_address(host: str, port: int) -> None:
    """Raise :class:`ConfigError` unless ``host:port`` can be bound now, as gunicorn binds it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise ConfigError(
            f"Cannot serve on host {host!r} ({exc}): pass --host with an address of this "
            "machine, or 0.0.0.0 for all of them."
        ) from None
    with socket.socket(family, kind, proto) as sock:
        # As gunicorn does: a port left in TIME_WAIT by a stopped server is free to take.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            raise ConfigError(_bind_problem(host, port, exc)) from None


def _bind_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Port {port} is already in use on {host} (another prelabel server?): stop that "
            f"server, or {_PORT_HINT}."
        )
    if exc.errno == errno.EACCES:
        return f"Port {port} needs privileges this user lacks (ports below 1024): {_PORT_HINT}."
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"Cannot serve on host {host!r}: it is not an address of this machine; pass --host "
            "with one of its addresses, or 0.0.0.0 for all of them."
        )
    return f"Cannot bind {host}:{port} ({exc.strerror}): check --host, or {_PORT_HINT}."


def load_in_child(backend: Backend) -> None:
    """Run ``backend.load()`` in a forked child; raise what it raised as one line.

    The child's output is kept back (each server worker loads again and prints it then), and
    shown only when ``load()`` failed in a way that is not a :class:`PrelabelError`: a bug,
    whose traceback is what the reader needs.

    Raises:
        BackendLoadError: ``load()`` failed (its message), raised something unexpected (after
            the child's output and traceback), or the child died (the signal is named).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as output:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover  (the child: coverage does not follow a fork)
            os.close(read_end)
            os.dup2(output.fileno(), 1)
            os.dup2(output.fileno(), 2)
            _load_and_exit(backend, write_end)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            message = pipe.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code == _UNEXPECTED:
            output.seek(0)
            sys.stderr.write(output.read().decode(errors="replace"))
    if code == 0:
        return
    if code < 0:
        raise BackendLoadError(
            f"Loading the {backend.name} backend was stopped by signal {-code} "
            f"({_signal_name(-code)}); if it ran out of memory, serve it on a larger machine."
        )
    raise BackendLoadError(message or f"Loading the {backend.name} backend failed.")


_FAILED, _UNEXPECTED = 1, 2  # the child's exit codes


def _load_and_exit(backend: Backend, pipe: int) -> None:  # pragma: no cover  (in the child)
    code, message = 0, ""
    try:
        backend.load()
    except PrelabelError as exc:
        code, message = _FAILED, str(exc)
    except BaseException as exc:
        traceback.print_exc()
        code = _UNEXPECTED
        message = (
            f"Loading the {backend.name} backend failed with {type(exc).__name__}: {exc} "
            "(traceback above)."
        )
    try:
        with os.fdopen(pipe, "wb") as out:
            out.write(message.encode())
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"
