"""A gunicorn worker that gives a thread to a request only once the whole request is in.

gunicorn's ``gthread`` worker hands a connection to a thread as soon as bytes arrive, and the
thread then blocks until the body is complete: eight clients that send headers and part of a
body held all eight threads, and ``/health`` went unanswered (Label Studio waits 1 s, then
marks the backend disconnected and silently skips predictions). Here the worker's event loop
reads each request, headers and body, without blocking; only a complete request reaches the
thread pool. A slow client costs a socket and its buffer, never a thread.

On top of that:

* ``GET …/health`` has its own small thread pool, so long ``/predict`` calls occupying every
  thread cannot delay it past LS's 1 s;
* a request not complete within ``read_timeout`` seconds (plus time for its body at
  ``min_rate`` bytes/s) gets 408; a body over ``max_body`` gets 413 unread;
* past ``max_clients`` connections, or ``max_buffered`` bytes of bodies being read, a new
  request gets an immediate 503 with ``Retry-After`` instead of waiting in the kernel's queue;
* a thread writing a response to a client that stops reading gives up after ``io_timeout``.

Only plain HTTP/1 is buffered (prelabel serves no TLS or HTTP/2); anything else is left to
``gthread`` as it is.
"""

from __future__ import annotations

import contextlib
import errno
import json
import resource
import selectors
import time
from concurrent import futures
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn.workers.gthread import TConn, ThreadWorker

__all__ = ["BufferingWorker", "request_complete"]

_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 64 * 1024
_READ_SIZE = 256 * 1024
_STATUS = {
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


@dataclass
class _Reading:
    """A connection whose request is still arriving."""

    deadline: float
    buffer: bytearray = field(default_factory=bytearray)
    body_start: int | None = None  # offset past the headers, once they are in
    length: int | None = None  # Content-Length, when given
    chunked: bool = False
    health: bool = False  # GET …/health: served by its own threads
    reserved: int = 0  # bytes counted against the worker's buffer budget


def _headers(head: bytes) -> tuple[bytes, int | None, bool, bool]:
    """The request's method and path, its Content-Length, whether it is chunked and whether it
    expects ``100 Continue`` (lenient: gunicorn's parser judges the request properly once it
    reaches a thread)."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    target = parts[1] if len(parts) > 1 else b""
    length, chunked, expect = None, False, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length" and value.isdigit():
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"expect" and value == b"100-continue":
            expect = parts[-1].upper() == b"HTTP/1.1"
    method = parts[0].upper()
    return method + b" " + target.split(b"?", 1)[0], length, chunked, expect


def _chunked_end(buffer: bytearray, start: int) -> int | None:
    """Where a chunked body starting at ``start`` ends, or ``None`` while it is incomplete."""
    at = start
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size_text = bytes(buffer[at:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return line_end  # malformed: let gunicorn's parser answer 400
        if size == 0:
            trailer_end = buffer.find(_HEAD_END, line_end)
            if buffer[line_end : line_end + 4] == _HEAD_END:
                return line_end + 4
            return None if trailer_end < 0 else trailer_end + 4
        at = line_end + 2 + size + 2
        if at > len(buffer):
            return None


def request_complete(state: _Reading) -> bool:
    """Whether ``state.buffer`` holds a whole request (headers and body)."""
    if state.body_start is None:
        return False
    if state.chunked:
        return _chunked_end(state.buffer, state.body_start) is not None
    return len(state.buffer) - state.body_start >= (state.length or 0)


class BufferingWorker(ThreadWorker):  # type: ignore[misc]
    """``gthread`` with request buffering in the event loop; see the module docstring.

    The limits are class attributes, set in the master before it forks its workers.
    """

    read_timeout = 30.0
    min_rate = 256 * 1024
    io_timeout = 60.0
    max_body = 64 * 1024 * 1024
    max_buffered = 512 * 1024 * 1024
    max_clients = 1000
    health_threads = 2

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading: dict[TConn, _Reading] = {}
        self._reserved = 0
        self._health_pool: futures.ThreadPoolExecutor | None = None
        # Accepting past the descriptor limit would crash the worker (EMFILE): stay below it.
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self._client_limit = min(self.max_clients, max(soft - 128, 16))

    def _buffers(self) -> bool:
        return not self.cfg.is_ssl and self.cfg.http2_cleartext == "off"

    def init_process(self) -> None:
        self._health_pool = futures.ThreadPoolExecutor(
            max_workers=self.health_threads, thread_name_prefix="health"
        )
        super().init_process()

    # -- connections into the event loop ---------------------------------------------------

    def accept(self, listener: Any) -> None:
        if not self._buffers():
            super().accept(listener)
            return
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, sock, client, listener.getsockname())  # non-blocking
        if self.nr_conns > self._client_limit:
            self._refuse(conn, 503, "too many connections; retry shortly")
            return
        self._start_reading(conn, b"")

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:
        if not self._buffers():
            super().on_client_socket_readable(conn, client)
            return
        # A kept-alive connection sends its next request: read it here, not in a thread.
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._start_reading(conn, b"")

    def _start_reading(self, conn: TConn, already: bytes) -> None:
        conn.sock.setblocking(False)
        state = _Reading(time.monotonic() + self.read_timeout, bytearray(already))
        self._reading[conn] = state
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))
        self._progress(conn, state)

    def _on_readable(self, conn: TConn, _sock: Any) -> None:
        state = self._reading[conn]
        try:
            data = conn.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            self._forget(conn)
            self.nr_conns -= 1
            conn.close()
            return
        state.buffer += data
        self._progress(conn, state)

    def _progress(self, conn: TConn, state: _Reading) -> None:
        """Parse what arrived; hand a complete request over, refuse an impossible one."""
        if state.body_start is None:
            end = state.buffer.find(_HEAD_END)
            if end < 0:
                if len(state.buffer) > _MAX_HEAD:
                    self._refuse(conn, 431, "request headers too large")
                return
            target, state.length, state.chunked, expect = _headers(bytes(state.buffer[:end]))
            state.body_start = end + 4
            state.health = target.startswith(b"GET ") and target.endswith(b"/health")
            if (state.length or 0) > self.max_body:
                self._refuse(conn, 413, f"request body over {self.max_body} bytes")
                return
            state.deadline += (state.length or 0) / self.min_rate
            state.reserved = state.length or 0
            if self._reserved + state.reserved > self.max_buffered:
                state.reserved = 0
                self._refuse(conn, 503, "too many large requests in flight; retry shortly")
                return
            self._reserved += state.reserved
            if expect and not request_complete(state):
                # The client waits for this before sending its body (gunicorn sends another
                # once the request reaches a thread: clients ignore a second 1xx).
                with contextlib.suppress(OSError):
                    conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        if state.chunked and len(state.buffer) - state.body_start > self.max_body:
            self._refuse(conn, 413, f"request body over {self.max_body} bytes")
            return
        if request_complete(state):
            self._forget(conn)
            conn.data_ready = True  # gthread must not wait for bytes we already hold
            conn.prebuffered = bytes(state.buffer)
            self._submit(conn, self._health_pool if state.health else self.tpool)

    def _forget(self, conn: TConn) -> None:
        state = self._reading.pop(conn, None)
        if state is not None:
            self._reserved -= state.reserved
            with contextlib.suppress(KeyError, ValueError, OSError):  # closed by the peer
                self.poller.unregister(conn.sock)

    def _refuse(self, conn: TConn, status: int, why: str) -> None:
        """Answer from the event loop and close (a few hundred bytes: never blocks for long)."""
        self._forget(conn)
        body = json.dumps({"error": _STATUS[status].replace(" ", ""), "message": why}).encode()
        head = (
            f"HTTP/1.1 {status} {_STATUS[status]}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
            + ("Retry-After: 1\r\n" if status == 503 else "")
            + "\r\n"
        )
        # A client that is gone or not reading: closing is all that is left.
        with contextlib.suppress(OSError):
            conn.sock.send(head.encode() + body)
        self.log.warning("%s %s from %s", status, why, conn.client)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        super().murder_pending()
        now = time.monotonic()
        for conn, state in list(self._reading.items()):
            if state.deadline < now:
                self._refuse(conn, 408, f"request not complete within {self.read_timeout:g} s")

    # -- threads ---------------------------------------------------------------------------

    def _submit(self, conn: TConn, pool: futures.ThreadPoolExecutor | None) -> None:
        assert pool is not None  # both pools exist once init_process ran
        fs = pool.submit(self.handle, conn)
        fs.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    def handle(self, conn: TConn) -> Any:
        prebuffered = conn.__dict__.pop("prebuffered", None)
        if prebuffered:
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(prebuffered)
        return super().handle(conn)

    def handle_request(self, req: Any, conn: TConn) -> Any:
        # Bounds a write to a client that stopped reading (the request itself is buffered).
        conn.sock.settimeout(self.io_timeout)
        return super().handle_request(req, conn)

    def finish_request(self, conn: TConn, fs: futures.Future[Any]) -> None:
        leftover = (
            self._buffers()
            and self.alive
            and not fs.cancelled()
            and fs.exception() is None
            and fs.result() is True
            and conn.parser.unreader.buf.getvalue()
        )
        if leftover:
            # A pipelined next request, maybe partial: read the rest here, not in a thread.
            self._start_reading(conn, conn.parser.unreader.take_buffered())
            return
        super().finish_request(conn, fs)

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self._health_pool is not None:
                self._health_pool.shutdown(wait=False)
