"""uvicorn's httptools protocol with limits on what a client may make the server hold.

uvicorn bounds none of these with httptools: the size and number of request headers (llhttp has no
limit, and httptools joins a header's pieces in memory: one 50 MB header cost 100 MB of RSS), the time a
connection may sit before its first request, the time a request head or body may take to trickle in,
and the number of open connections. Each connection here goes through these phases, one timer at a time:

- connected, nothing received: closed after ``first_request_timeout`` (no answer: there is no request);
- request head (request line and headers) arriving: at most ``max_head_bytes`` and ``max_headers``,
  else 431; complete within ``header_timeout`` of its first byte, else 408;
- request body arriving: every ``body_timeout`` window must bring at least one byte and at least
  ``body_min_rate`` bytes a second, else 408 (or a plain close once the app has started answering);
- the response: no limit at all. A stream (direct play, segments, event streams) stays open as long as
  the client reads it, and a slow head of the next pipelined request waits for it to finish.

Between requests uvicorn's own keep-alive timeout applies. The 431 and 408 answers are written by the
protocol before the request reaches the app; the connection is then half-closed and what the client
still sends is read and dropped for a moment, so that the answer is not lost to a TCP reset.

Connections past ``max_connections`` are closed as soon as they are accepted (uvicorn's
``limit_concurrency`` would still read their request first, holding the socket while it trickles in),
with one log line when a burst of refusals starts and one when it ends.

This module knows nothing of settings or the CLI: :func:`guarded_protocol` takes an :class:`HttpLimits`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
from asyncio import TimerHandle
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("revenge.http")

# How long a rejected connection's further input is read and dropped before it is closed.
LINGER_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class HttpLimits:
    max_head_bytes: int = 65_536  # request line and headers together
    max_headers: int = 100
    first_request_timeout: float = 10.0
    header_timeout: float = 10.0
    body_timeout: float = 10.0  # the window over which a body's rate is measured
    body_min_rate: int = 1024  # bytes per second
    max_connections: int = 16_384


def connection_cap(wanted: int, open_file_limit: int | None) -> int:
    """At most ``wanted`` connections, leaving a quarter of the open-file limit (64 to 1024 descriptors)
    for the files, databases and sockets the server opens itself. ``None``: no limit."""
    if open_file_limit is None:
        return wanted
    reserve = min(1024, max(64, open_file_limit // 4))
    return max(1, min(wanted, open_file_limit - reserve))


def open_file_limit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def raise_open_file_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; (before, after). Every connection and
    every file being streamed is a descriptor, and distributions still default the soft limit to 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # e.g. an infinite hard limit the kernel caps (nr_open)
            return soft, soft
    return soft, hard


class ConnectionGate:
    """Admits connections while fewer than ``cap`` are open; logs refusals once per burst."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.refused = 0  # in the current burst

    def admit(self, open_connections: int) -> bool:
        if open_connections < self.cap:
            if self.refused:
                log.warning("accepting connections again; %d were refused while %d were open",
                            self.refused, self.cap)
                self.refused = 0
            return True
        if not self.refused:
            log.warning("%d connections are open (http_max_connections): closing new ones until some end",
                        self.cap)
        self.refused += 1
        return False


class _TooManyHeaders(Exception):
    pass


def _error_response(status: int, code: str, message: str) -> bytes:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    phrase = HTTPStatus(status).phrase
    return (f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode() + body


ENDLESS = "revenge.endless"  # a scope key: this response runs until the client leaves


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Use :func:`guarded_protocol`, which binds the limits and a gate shared by one server's connections."""

    limits: ClassVar[HttpLimits]
    gate: ClassVar[ConnectionGate]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle_timer: TimerHandle | None = None  # until the first byte
        self._guard_timer: TimerHandle | None = None  # head, body or linger
        self._rejected = False  # answered by the guard (or refused): input is dropped from now on
        self._max_head_bytes = self.limits.max_head_bytes
        self._in_head = True  # False from the end of a request's headers to the end of its body
        self._head_bytes = 0
        self._too_many_headers = False
        self._body_bytes = 0  # in the current window

    # --- timers

    def _arm(self, delay: float, callback: Callable[[], None]) -> None:
        self._disarm()
        self._guard_timer = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._guard_timer is not None:
            self._guard_timer.cancel()
            self._guard_timer = None

    # --- connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if not self.gate.admit(len(self.connections)):
            self.transport = transport  # connection_lost uses it
            self._rejected = True
            transport.close()
            return
        super().connection_made(transport)
        self._idle_timer = self.loop.call_later(self.limits.first_request_timeout,
                                                self._first_request_timed_out)

    def shutdown(self) -> None:
        super().shutdown()
        # A response that never ends by itself (an event stream marks its scope ENDLESS) would hold the
        # server's exit forever: close its connection, which tells it the client left.
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and cycle.scope.get(ENDLESS):
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._rejected:
            return
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        self._unset_keepalive_if_required()
        while True:
            if self._in_head:
                room = self._max_head_bytes - self._head_bytes
                if len(data) <= room:
                    part, data = data, b""
                elif room > 0:
                    part, data = data[:room], data[room:]  # httptools never holds more of a head than that
                else:
                    self._reject_head(431, "headers_too_large", "the request line and headers exceed "
                                      f"{self._max_head_bytes} bytes")
                    return
                self._head_bytes += len(part)
            else:
                part, data = data, b""
                self._body_bytes += len(part)  # near enough: chunk framing and pipelined bytes count too
            try:
                self.parser.feed_data(part)
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self._disarm()
                    self.handle_websocket_upgrade()
                    return
                self._unsupported_upgrade_warning()
            except httptools.HttpParserError:
                if self._too_many_headers:
                    self._reject_head(431, "too_many_headers",
                                      f"the request has more than {self.limits.max_headers} headers")
                else:
                    self._disarm()
                    msg = "Invalid HTTP request received."
                    self.logger.warning(msg)
                    self.send_400_response(msg)
                return
            if self._rejected or self.transport.is_closing():
                return
            if not data:
                break
        # Timers only for what is still incomplete: a request that came whole in one read costs none.
        if self._guard_timer is None:
            if not self._in_head:
                self._body_bytes = 0
                self._arm(self.limits.body_timeout, self._body_window_ended)
            elif self._head_bytes:
                self._arm(self.limits.header_timeout, self._head_timed_out)

    # --- parser callbacks (the count of headers is checked once they are all in: the head's byte limit
    # already bounds how many there can be)

    def on_headers_complete(self) -> None:
        if len(self.headers) > self.limits.max_headers:
            self._too_many_headers = True
            raise _TooManyHeaders  # httptools stops parsing and raises HttpParserCallbackError
        self._in_head = False
        if self._guard_timer is not None:
            self._guard_timer.cancel()
            self._guard_timer = None
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        if self._guard_timer is not None:
            self._guard_timer.cancel()
            self._guard_timer = None
        super().on_message_complete()

    # --- limits

    def _previous_response_running(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _first_request_timed_out(self) -> None:
        self._idle_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _head_timed_out(self) -> None:
        self._guard_timer = None
        if self._previous_response_running():
            # A pipelined head behind a response that is still flowing: judged once that one is done.
            self._arm(self.limits.header_timeout, self._head_timed_out)
            return
        self._reject_head(408, "request_timeout",
                          f"the request line and headers took longer than {self.limits.header_timeout:g} s")

    def _body_window_ended(self) -> None:
        self._guard_timer = None
        if self._in_head or self.transport.is_closing():
            return
        limits = self.limits
        enough = max(1, int(limits.body_min_rate * limits.body_timeout))
        cycle = self.cycle
        answering = cycle is not None and cycle.response_started and not cycle.response_complete
        app_not_reading = self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue)
        if self._body_bytes >= enough or app_not_reading or answering:
            # Flowing; or the app has not asked for the body yet (uvicorn stopped reading, or has not sent
            # 100 Continue: not the client's fault); or the app is streaming its answer, never cut.
            self._body_bytes = 0
            self._arm(limits.body_timeout, self._body_window_ended)
            return
        self._rejected = True
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app sees http.disconnect and writes nothing more
            cycle.message_event.set()
        if cycle is not None and cycle.response_started:
            self.transport.close()
            return
        self._answer_and_linger(_error_response(
            408, "request_timeout",
            f"the request body arrived slower than {limits.body_min_rate} bytes/s "
            f"over {limits.body_timeout:g} s"))

    def _reject_head(self, status: int, code: str, message: str) -> None:
        self._rejected = True
        if self._previous_response_running():
            self.transport.close()  # not the client's turn to get an answer
            return
        self._answer_and_linger(_error_response(status, code, message))

    def _answer_and_linger(self, response: bytes) -> None:
        self._disarm()
        self.flow.resume_reading()  # keep reading (and dropping) until the linger ends
        self.transport.write(response)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._arm(LINGER_SECONDS, self.transport.close)


def guarded_protocol(limits: HttpLimits) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with ``limits``; one per server, since its
    connections share one gate."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,),
                {"limits": limits, "gate": ConnectionGate(limits.max_connections)})
