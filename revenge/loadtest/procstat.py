"""CPU time and memory of a local process from ``/proc`` (Linux), and which process listens on a port.

No psutil: ``/proc/<pid>/stat`` has the CPU ticks, ``/proc/<pid>/status`` the resident memory, and
``/proc/net/tcp{,6}`` plus ``/proc/<pid>/fd`` say which process owns a listening socket.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_LISTEN = "0A"


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_seconds: float  # user + system since the process started
    rss_bytes: int
    hwm_bytes: int  # peak resident memory so far (VmHWM)


def parse_stat_cpu_ticks(stat: str) -> int:
    """utime + stime from the text of ``/proc/<pid>/stat``. The command name (field 2) may hold
    spaces and parentheses, so fields are counted after its last ``)``."""
    rest = stat[stat.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    return int(rest[11]) + int(rest[12])


def parse_status_kib(status: str, name: str) -> int:
    for line in status.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise KeyError(name)


def sample(pid: int, proc: Path = PROC) -> ProcSample:
    """Raises ``OSError`` when the process is gone."""
    ticks = parse_stat_cpu_ticks((proc / str(pid) / "stat").read_text())
    status = (proc / str(pid) / "status").read_text()
    return ProcSample(ticks / os.sysconf("SC_CLK_TCK"), parse_status_kib(status, "VmRSS") * 1024,
                      parse_status_kib(status, "VmHWM") * 1024)


def listening_inodes(port: int, tables: list[str]) -> set[int]:
    """Socket inodes listening on ``port`` in the text of ``/proc/net/tcp`` / ``tcp6`` tables."""
    inodes: set[int] = set()
    for table in tables:
        for line in table.splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10:
                continue
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state == _LISTEN and int(local.rsplit(":", 1)[1], 16) == port and inode:
                inodes.add(inode)
    return inodes


def pid_listening_on(port: int, proc: Path = PROC) -> int | None:
    """The process with a socket listening on TCP ``port``, if this user can see it."""
    tables = []
    for name in ("tcp", "tcp6"):
        try:
            tables.append((proc / "net" / name).read_text())
        except OSError:
            continue
    wanted = {f"socket:[{inode}]" for inode in listening_inodes(port, tables)}
    if not wanted:
        return None
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    return int(entry.name)
        except OSError:  # another user's process, or gone
            continue
    return None


def is_local_host(host: str) -> bool:
    """Whether ``host`` names this machine (loopback, or an address of one of its interfaces)."""
    if host in ("localhost", socket.gethostname()):
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if ip.is_loopback or ip.is_unspecified:
            return True
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.bind((address, 0))  # only an address of this machine can be bound
            return True
        except OSError:
            continue
    return False
