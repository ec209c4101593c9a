"""Real parts for scale-out tests and benchmarks: ``revenge serve`` processes on loopback ports and
Debian's nginx (unprivileged: its own prefix, pid and temp paths in a temporary dir) running
``deploy/nginx.conf.template`` rendered with those ports."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.live import free_port

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
START_TIMEOUT_S = 60.0


def render_nginx(listen: str, backends: Sequence[str]) -> str:
    """The template with ``listen`` and one ``server`` line per ``host:port`` in ``backends``."""
    servers = " ".join(f"server {b} max_fails=1 fail_timeout=5s;" for b in backends)
    return TEMPLATE.read_text().replace("${REVENGE_LISTEN}", listen).replace("${REVENGE_SERVERS}", servers)


class Nginx:
    def __init__(self, prefix: Path, backends: Sequence[str], port: int | None = None) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(binary).exists():
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx)")
        self.binary = binary
        self.prefix = prefix
        self.port = port or free_port()
        self.conf = prefix / "nginx.conf"
        (prefix / "temp").mkdir(parents=True, exist_ok=True)  # nginx makes temp/*, not temp itself
        self.conf.write_text(render_nginx(f"127.0.0.1:{self.port}", backends))
        self.process: subprocess.Popen[bytes] | None = None
        self.log = prefix / "stderr.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *extra: str) -> list[str]:
        return [self.binary, "-p", f"{self.prefix}/", "-c", str(self.conf), "-e", "stderr",
                "-g", "daemon off;", *extra]

    def check(self) -> str:
        done = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stderr

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                            stdout=subprocess.DEVNULL, stderr=log)
        wait_http(self.url + "/healthz", self.process, self.log)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGQUIT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


class Instance:
    """One ``revenge serve`` process (its own data dir; the library and store as given)."""

    def __init__(self, name: str, data_dir: Path, library: Sequence[Path], store: str,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.data_dir = data_dir
        self.library = library
        self.store = store
        self.port = free_port()
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "serve.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REVENGE_")}
        env.update(PYTHONPATH=str(ROOT), REVENGE_STORE=self.store, REVENGE_DATA_DIR=str(self.data_dir),
                   REVENGE_LOG_LEVEL="warning", **self.extra_env)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "revenge", "serve", *map(str, self.library), "--port", str(self.port)],
                env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_http(self.url + "/healthz", self.process, self.log, scanned=True)

    def kill(self) -> None:
        """``kill -9``: a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def metric(self, name: str, **labels: str) -> float:
        """One sample of this instance's /metrics (0 when absent)."""
        text = httpx.get(self.url + "/metrics", timeout=10).text
        want = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in text.splitlines():
            if line.startswith(name + ("{" + want + "}" if want else " ")):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, scanned: bool = False) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            r = httpx.get(url, timeout=5)
            if r.status_code == 200 and not (scanned and r.json().get("scan", {}).get("running")):
                return
        except (httpx.TransportError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer in time:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.05)
