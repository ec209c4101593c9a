"""The local journal of acknowledged writes, for a Redis-protocol store that snapshots only.

Dragonfly persists by snapshots (it has no append-only file), and so does a Redis with ``appendonly
no``: a crash of the server loses what was written since its last snapshot, acknowledged writes
included. So each instance also appends every write it acknowledges to a journal in its data dir (one
directory per store: ``progress-journal/``, ``marks-journal/``, …), fsynced once per batch (group
commit, as the SQLite store does) before the write is answered, and replays it after the server came back
from a snapshot. Every entry is an idempotent re-apply (a progress update ordered by its event time, a
star with its time, a queue with its version, a scrobble with its unique id, a playlist as its whole
state), so replaying entries the snapshot already holds changes nothing.

The server is watched through its *mark*: ``run_id`` (``INFO server``; Dragonfly, which may not give
one, is told by its uptime), ``LASTSAVE``, how long that save took and the server's clock (``TIME``).
``decide`` (pure) compares the mark with the last one seen:

* another ``run_id`` (or an uptime that went back), or an older ``LASTSAVE``: the server restarted from
  a snapshot: replay the whole journal (what is left of it is at most what no seen snapshot holds);
* a ``LASTSAVE`` that advanced on the same server: a snapshot completed: every segment written before
  the snapshot's point in time (``snapshot_point_ms``, with margins for the save's duration, the
  store timeout and the clocks' skew) is in it, and is deleted.

The journal is a directory of segment files (``<n>.log``: one JSON array per line, ``[journal_ms,
*entry]``, the entry as the store's codec makes it); a new segment is started at every check, so
trimming deletes whole files and never rewrites one. The last mark seen is kept in ``mark.json``, so a
restarted instance replays only when the server restarted meanwhile (or when it never saw a mark). The
watching and replaying is ``revenge.journal_watch.Journal``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from revenge.progress.durability import Durability, redis_durability
from revenge.redis_scripts import reply_text

log = logging.getLogger("revenge.journal")

CLOCK_SKEW_MARGIN_MS = 1000  # LASTSAVE has a resolution of one second

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ServerMark:
    """What a Redis-protocol server says about its process and its last snapshot."""

    run_id: str  # INFO server run_id; "" when the server gives none (then ``started_s`` tells restarts)
    started_s: int  # the server's clock minus its uptime: when the process started
    last_save_s: int  # LASTSAVE
    save_duration_s: int  # how long that save took (0 when the server does not say)
    server_now_ms: int  # TIME
    local_now_ms: int  # this instance's clock when TIME was answered
    durability: Durability | None = None  # from INFO server and CONFIG GET append*, read with the rest

    @property
    def clock_offset_ms(self) -> int:
        """Add to a local time to get the server's time."""
        return self.server_now_ms - self.local_now_ms

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "started_s": self.started_s, "last_save_s": self.last_save_s}


async def read_server_mark(client: aioredis.Redis) -> ServerMark:
    """The server's process, its last snapshot and its durability, in one round trip (``RedisError`` to
    the caller)."""
    pipe = client.pipeline(transaction=False)
    pipe.info("server")
    pipe.info("persistence")
    pipe.lastsave()
    pipe.time()
    pipe.config_get("append*")  # refused by a managed server, meaningless on Dragonfly: both are read
    server, persistence, last_save, (seconds, micros), config = await pipe.execute(raise_on_error=False)
    for reply in (server, persistence, last_save):
        if isinstance(reply, Exception):
            raise reply
    local_ms = time.time_ns() // 1_000_000
    now_s = int(seconds)
    duration = persistence.get("rdb_last_bgsave_time_sec", persistence.get("last_success_save_duration_sec"))
    return ServerMark(
        run_id=reply_text(server.get("run_id", "")) if server.get("run_id") else "",
        started_s=now_s - int(server.get("uptime_in_seconds", 0)),
        last_save_s=int(last_save.timestamp()) if hasattr(last_save, "timestamp") else int(last_save),
        save_duration_s=max(0, int(duration or 0)),
        server_now_ms=now_s * 1000 + int(micros) // 1000, local_now_ms=local_ms,
        durability=_durability(server, config))


def _durability(server: dict[str, Any], config: object) -> Durability:
    if "dragonfly_version" in server:
        return redis_durability(server, None)
    if isinstance(config, ResponseError):  # CONFIG renamed away, or not allowed by an ACL
        return redis_durability(server, None, str(config))
    if isinstance(config, Exception):
        raise config
    return redis_durability(server, config if isinstance(config, dict) else None)


Action = Literal["replay", "trim", "none"]


def same_process(previous: Mapping[str, Any], mark: ServerMark) -> bool:
    if previous.get("run_id") or mark.run_id:
        return previous.get("run_id") == mark.run_id
    # No run_id: the start time, computed from an uptime in whole seconds, may jitter by one.
    return abs(int(previous.get("started_s", 0)) - mark.started_s) <= 2


def decide(previous: Mapping[str, Any] | None, mark: ServerMark) -> Action:
    """What to do with the journal given the last mark seen (``ServerMark.as_dict``, or None: never seen
    one) and the current one."""
    if previous is None:
        return "replay"
    if not same_process(previous, mark) or mark.last_save_s < int(previous.get("last_save_s", 0)):
        return "replay"
    if mark.last_save_s > int(previous.get("last_save_s", 0)):
        return "trim"
    return "none"


def snapshot_point_ms(mark: ServerMark, store_timeout_ms: int) -> int:
    """A local time before which every acknowledged write is in the snapshot ``mark.last_save_s`` names.

    The snapshot holds the data as of when the save started (a fork), at least ``save_duration_s`` before
    LASTSAVE (whole seconds: one more); a write is applied within the store timeout of its journal time;
    the server's clock is ``clock_offset_ms`` ahead of ours."""
    started_ms = (mark.last_save_s - mark.save_duration_s) * 1000 - CLOCK_SKEW_MARGIN_MS
    return started_ms - store_timeout_ms - mark.clock_offset_ms


@dataclass(frozen=True, slots=True)
class Codec(Generic[T]):
    """How a store's entries go to a journal line and back (``decode`` raises ValueError, TypeError,
    KeyError on a line it cannot read)."""

    encode: Callable[[T], list[Any]]
    decode: Callable[[list[Any]], T]


def entry_line(journal_ms: int, codec: Codec[T], entry: T) -> bytes:
    return orjson.dumps([journal_ms, *codec.encode(entry)]) + b"\n"


def parse_line(line: bytes, codec: Codec[T]) -> tuple[int, T]:
    t, *rest = orjson.loads(line)
    return int(t), codec.decode(rest)


@dataclass
class _Segment:
    path: Path
    last_ms: int  # journal time of its newest entry (0: empty)


class JournalFiles(Generic[T]):
    """The segment files in ``directory`` (blocking I/O: the caller runs these in a thread, one at a
    time)."""

    def __init__(self, directory: Path, codec: Codec[T]) -> None:
        self.dir = directory
        self.codec = codec
        self._segments: list[_Segment] = []
        self._fd: int | None = None

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.dir.glob("*.log"), key=lambda p: int(p.stem)):
            last = 0
            for t, _ in self._read(path):
                last = max(last, t)
            self._segments.append(_Segment(path, last))
        self._start_segment()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _start_segment(self) -> None:
        number = int(self._segments[-1].path.stem) + 1 if self._segments else 1
        path = self.dir / f"{number:010d}.log"
        self.close()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segments.append(_Segment(path, 0))
        _fsync_dir(self.dir)

    def append(self, journal_ms: int, entries: Sequence[T]) -> None:
        """Write the batch and fsync it: when this returns, the entries survive a crash of the machine."""
        self.append_groups([(journal_ms, entries)])

    def append_groups(self, groups: Sequence[tuple[int, Sequence[T]]]) -> None:
        """``append`` of several batches with one fsync (group commit)."""
        if self._fd is None:  # the store was closed: the caller answers StoreUnavailable
            raise OSError(errno.EBADF, f"the journal {self.dir.name} is closed")
        data = b"".join(entry_line(t, self.codec, e) for t, entries in groups for e in entries)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fsync(self._fd)
        newest = max((t for t, _ in groups), default=0)
        self._segments[-1].last_ms = max(self._segments[-1].last_ms, newest)

    def rotate(self) -> None:
        """Start a new segment unless the current one is empty (so a trim can delete the old one)."""
        if self._segments and self._segments[-1].last_ms:
            self._start_segment()

    def trim(self, before_ms: int) -> int:
        """Delete the segments whose every entry is older than ``before_ms``; how many entries went."""
        kept, removed = [], 0
        for segment in self._segments[:-1]:  # never the one being written
            if segment.last_ms < before_ms:  # an empty one too (last_ms 0)
                removed += sum(1 for _ in self._read(segment.path))
                segment.path.unlink(missing_ok=True)
            else:
                kept.append(segment)
        self._segments = [*kept, self._segments[-1]]
        return removed

    def entries(self) -> tuple[list[T], list[Path]]:
        """Every entry in the journal, oldest segment first, and the segments they are in (closed: the
        entries written from now on go to a new one)."""
        self.rotate()
        closed = self._segments[:-1]
        return [e for segment in closed for _, e in self._read(segment.path)], [s.path for s in closed]

    def restamp(self, entries: Sequence[T], journal_ms: int, replaced: Sequence[Path]) -> None:
        """Write ``entries`` again with the journal time ``journal_ms`` and delete the segments
        ``replaced`` they came from: after a replay into a restarted server, only a snapshot taken after
        the replay holds them, whatever their first journal time was."""
        self.rotate()
        self.append(journal_ms, entries)
        gone = set(replaced)
        for segment in self._segments:
            if segment.path in gone:
                segment.path.unlink(missing_ok=True)
        self._segments = [s for s in self._segments if s.path not in gone]

    @property
    def segments(self) -> int:
        return len(self._segments)

    def _read(self, path: Path) -> Iterator[tuple[int, T]]:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return
        for line in data.splitlines():
            try:
                yield parse_line(line, self.codec)
            except (ValueError, TypeError, KeyError):  # torn by a crash mid-write: never acknowledged
                log.warning("journal %s/%s: skipping a damaged line", self.dir.name, path.name)

    def read_mark(self) -> dict[str, Any] | None:
        try:
            value = orjson.loads((self.dir / "mark.json").read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None
        return value if isinstance(value, dict) else None

    def write_mark(self, mark: ServerMark) -> None:
        # Not fsynced: a mark lost or stale only makes the next start replay (harmless), never skip one.
        tmp = self.dir / "mark.json.tmp"
        tmp.write_bytes(orjson.dumps(mark.as_dict()))
        tmp.replace(self.dir / "mark.json")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
