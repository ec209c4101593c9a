"""A Server-Sent Events client for tests: an httpx stream read by a thread, its events parsed into a
list that tests wait on (with a deadline, never a sleep)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson


@dataclass
class SseEvent:
    type: str
    data: Any
    id: str | None


@dataclass
class SseStream:
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    events: list[SseEvent] = field(default_factory=list)
    status: int | None = None
    ended: bool = False
    comments: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _client: httpx.Client | None = None
    _response: httpx.Response | None = None
    _thread: threading.Thread | None = None

    def start(self, timeout: float = 10.0) -> SseStream:
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self.status is not None, timeout):
                raise AssertionError("the event stream did not answer")
        return self

    def _run(self) -> None:
        assert self._client is not None
        try:
            with self._client.stream("GET", self.url, headers=self.headers,
                                     params=self.params or None) as response:
                self._response = response
                with self._cond:
                    self.status = response.status_code
                    self._cond.notify_all()
                if response.status_code != 200:
                    response.read()
                    return
                kind, data, event_id = "message", [], None
                for line in response.iter_lines():
                    if line.startswith(":"):
                        with self._cond:
                            self.comments += 1
                            self._cond.notify_all()
                    elif line == "":
                        if data:
                            event = SseEvent(kind, orjson.loads("\n".join(data)), event_id)
                            with self._cond:
                                self.events.append(event)
                                self._cond.notify_all()
                        kind, data, event_id = "message", [], None
                    else:
                        name, _, value = line.partition(":")
                        value = value[1:] if value.startswith(" ") else value
                        if name == "event":
                            kind = value
                        elif name == "data":
                            data.append(value)
                        elif name == "id":
                            event_id = value
        except (httpx.HTTPError, RuntimeError, ValueError):
            pass
        finally:
            with self._cond:
                if self.status is None:
                    self.status = -1
                self.ended = True
                self._cond.notify_all()

    def body(self) -> Any:
        assert self._response is not None
        return self._response.json()

    def wait_for(self, predicate: Callable[[SseStream], bool], timeout: float = 15.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: predicate(self), timeout):
                raise AssertionError(f"timed out; events so far: {self.events}")

    def wait_event(self, type_: str, timeout: float = 15.0,
                   where: Callable[[SseEvent], bool] = lambda e: True) -> SseEvent:
        found: list[SseEvent] = []

        def seen(stream: SseStream) -> bool:
            found[:] = [e for e in stream.events if e.type == type_ and where(e)]
            return bool(found)

        self.wait_for(seen, timeout)
        return found[0]

    def of_type(self, type_: str) -> list[SseEvent]:
        with self._cond:
            return [e for e in self.events if e.type == type_]

    def last_id(self) -> str | None:
        with self._cond:
            ids = [e.id for e in self.events if e.id is not None]
        return ids[-1] if ids else None

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        if self._client is not None:
            self._client.close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> SseStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
