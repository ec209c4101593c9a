"""A real ``redis-server`` (Debian's) on a free loopback port, for tests and benchmarks.

The instance is durable the way a production Redis behind Revenge must be: no RDB snapshots, an
append-only file fsynced on every write (``fsync_always``: the progress store refuses anything less unless
``store_durability = "accept_loss"``; ``extra_args`` come last, so ``("--appendonly", "no")`` makes a
server it refuses). ``restart()`` stops it and starts it again on
the SAME port with the SAME data dir, so the AOF is replayed and clients that reconnect by URL find
their data (and an empty script cache, which is what the store's NOSCRIPT handling is for).

``SNAPSHOTS_ONLY`` (``extra_args``) stands in for Dragonfly's persistence: no append-only file, snapshots
only (``dump.rdb``, taken when the test calls ``save()``); a restart after ``stop(hard=True)`` loads the last
one, so whatever was written after it is gone, as on a Dragonfly that crashed.

There is no skip when ``redis-server`` is missing: the Redis tests must fail loudly, not pass by
omission (``scripts/test`` installs it).
"""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

START_TIMEOUT_S = 15.0
SNAPSHOTS_ONLY = ("--appendonly", "no")  # with the fixture's --save "": snapshots when save() is called


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000, so at most 55535) is free too."""
    for _ in range(200):
        port = _free_port()
        if port <= 55535 and _port_is_free(port + 10000):
            return port
    for port in range(20000, 55535, 7):
        if _port_is_free(port) and _port_is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster-mode redis-server")


def _answering_pid(port: int, timeout: float = 0.5) -> int | None:
    """The process id of the redis-server answering PING on ``port`` (raw RESP PING and ``INFO
    server``, so the fixture depends on nothing but a socket); None while none is ready (still
    loading its AOF: no PONG)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
            reply = b""
            while b"process_id:" not in reply or not reply.endswith(b"\r\n"):
                chunk = s.recv(65536)
                if not chunk:
                    return None
                reply += chunk
    except OSError:
        return None
    found = re.search(rb"process_id:(\d+)", reply)
    return int(found.group(1)) if found and reply.startswith(b"+PONG") else None


class RedisServer:
    """One redis-server process; stop/start/restart keep its port and data dir.

    With ``cluster``, the server runs in cluster mode as a one-node cluster owning every slot: it then
    refuses, like any cluster, commands and scripts whose keys span several hash slots.
    """

    def __init__(self, data_dir: Path, port: int | None = None, extra_args: tuple[str, ...] = (),
                 cluster: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.binary = binary
        self.data_dir = data_dir
        self.cluster = cluster
        # A port found free here is bound by redis-server later: another process may take it first.
        # Until this server has started once, such a port is swapped for another (see start).
        self._port_kept = port is not None
        self.port = port if port is not None else self._pick_port()
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def command_line(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--logfile", str(self.log_path),
            "--loglevel", "warning",
            *(("--cluster-enabled", "yes", "--cluster-config-file", str(self.data_dir / "nodes.conf"))
              if self.cluster else ()),
            *self.extra_args,
        ]

    def _pick_port(self) -> int:
        return _free_cluster_port() if self.cluster else _free_port()

    def start(self) -> None:
        if self.running:
            raise RuntimeError("redis-server is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            if self._start_once():
                self._port_kept = True  # restarts come back on the same port
                return
            self.port = self._pick_port()
        raise RuntimeError("no free port stayed free long enough for redis-server to bind it")

    def _start_once(self) -> bool:
        """Start and wait until this process answers (not another server that took the port);
        False when the port was taken and may be swapped for another."""
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        process = self.process = subprocess.Popen(self.command_line(), stdin=subprocess.DEVNULL,
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while _answering_pid(self.port) != process.pid:
            if process.poll() is not None or time.monotonic() > deadline:
                log = self.log_path.read_bytes()[log_start:].decode(errors="replace") \
                    if self.log_path.exists() else ""
                self.stop()
                if not self._port_kept and "Address already in use" in log:
                    return False
                raise RuntimeError(f"redis-server did not start on port {self.port}:\n{log[-2000:]}")
            time.sleep(0.01)
        if self.cluster:
            self._own_all_slots(deadline)
        return True

    def _own_all_slots(self, deadline: float) -> None:
        import redis

        with redis.Redis(host="127.0.0.1", port=self.port) as client:
            info = client.execute_command("CLUSTER", "INFO")
            if b"cluster_slots_assigned:16384" not in info:  # not yet (a restart keeps nodes.conf)
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", "0", "16383")
            while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("one-node redis cluster did not reach cluster_state:ok")
                time.sleep(0.02)

    def stop(self, hard: bool = False) -> None:
        """Stop the server: SIGTERM (clean shutdown) or, with ``hard``, SIGKILL (a crash)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def save(self) -> bool:
        """Take a snapshot (``SAVE``: dump.rdb, complete when this returns); False when the server is down."""
        import redis

        try:
            with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=10) as client:
                return bool(client.save())
        except redis.RedisError:
            return False

    def restart(self, hard: bool = True, down_seconds: float = 0.0) -> None:
        """Stop (a crash by default: only the fsynced AOF survives) and start on the same port."""
        self.stop(hard=hard)
        if down_seconds:
            time.sleep(down_seconds)
        self.start()


@contextlib.contextmanager
def running_redis(data_dir: Path | None = None, extra_args: tuple[str, ...] = (),
                  cluster: bool = False) -> Iterator[RedisServer]:
    """A started RedisServer for the block; for benchmarks and scripts that are not pytest."""
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="revenge-redis-")))
        server = RedisServer(data_dir, extra_args=extra_args, cluster=cluster)
        server.start()
        try:
            yield server
        finally:
            server.stop(hard=True)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh, empty redis-server per test (it starts in milliseconds)."""
    with running_redis(tmp_path / "redis") as server:
        yield server
