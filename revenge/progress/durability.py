"""How durable an acknowledged write is on the configured store, decided from what the server says (pure).

An acknowledged progress update must survive a restart of the store (DESIGN principle 5). The embedded
SQLite store fsyncs its WAL on every commit. A Redis-protocol server is only as durable as it is set up
to be, so the store asks it (``INFO server``, ``CONFIG GET append*``) when it connects and when it
reconnects, and ``redis_durability`` turns the answers into a level:

* ``fsync_always``: ``appendonly yes`` + ``appendfsync always``: every acknowledged write is on disk.
* ``fsync_everysec``: ``appendfsync everysec``: survives a crash of the server process (the write is in
  the OS), but a crash of the machine loses up to the last second or two.
* ``fsync_os``: ``appendfsync no``: the OS writes the file when it likes (tens of seconds on Linux).
* ``none``: no append-only file (``appendonly no``, or Dragonfly, which has none: it snapshots and
  replicates): every write since the last snapshot is lost when the server stops.
* ``journal``: any of the others, with the local journal (``with_journal``) making acknowledged
  progress updates durable: ``store_durability = "required"`` accepts it.
* ``unknown``: the server refused ``CONFIG GET`` (a managed Redis, an ACL) or answered something else.

``store_durability = "required"`` (the default) accepts only ``fsync_always``, the level the embedded
store has; ``"accept_loss"`` runs on any level (the operator accepts the loss; /healthz shows the level).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from revenge.errors import StoreUnavailable

DurabilityLevel = Literal["fsync_always", "fsync_everysec", "fsync_os", "none", "unknown", "journal"]
DurabilityPolicy = Literal["required", "accept_loss"]
DURABILITY_POLICIES: tuple[DurabilityPolicy, ...] = ("required", "accept_loss")
DURABLE_LEVEL: DurabilityLevel = "fsync_always"


class StoreNotDurable(StoreUnavailable):
    """The store answers, but acknowledged writes would not survive its restart and the settings require
    that they do: nothing is written (at startup the server refuses to start)."""


@dataclass(frozen=True, slots=True)
class Durability:
    level: DurabilityLevel
    server: str  # "sqlite", "redis 7.0.15", "dragonfly df-v1.25.2"
    detail: str  # what the server said, in words (logs, errors, /healthz)

    @property
    def durable(self) -> bool:
        return self.level in (DURABLE_LEVEL, "journal")

    def as_dict(self) -> dict[str, str]:
        return {"level": self.level, "server": self.server, "detail": self.detail}


SQLITE_DURABILITY = Durability("fsync_always", "sqlite", "WAL with synchronous=FULL: every commit is fsynced")

_AOF_LEVELS: Mapping[str, DurabilityLevel] = {"always": "fsync_always", "everysec": "fsync_everysec",
                                              "no": "fsync_os"}
_LEVEL_WORDS: Mapping[DurabilityLevel, str] = {
    "fsync_always": "every acknowledged write is fsynced",
    "fsync_everysec": "a crash of the machine loses up to the last second or two of acknowledged writes",
    "fsync_os": "a crash of the machine loses the acknowledged writes the OS has not written yet",
}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def redis_durability(info_server: Mapping[str, object], config: Mapping[object, object] | None,
                     config_error: str = "") -> Durability:
    """The level of a Redis-protocol server from its ``INFO server`` answer (as redis-py parses it) and
    its ``CONFIG GET append*`` answer (``None`` with ``config_error`` when the server refused it)."""
    if "dragonfly_version" in info_server:
        return Durability("none", f"dragonfly {_text(info_server['dragonfly_version'])}",
                          "Dragonfly keeps no append-only file (it snapshots): acknowledged writes since "
                          "the last snapshot are lost when it stops")
    server = f"redis {_text(info_server.get('redis_version', '?'))}"
    if config is None:
        return Durability("unknown", server, f"CONFIG GET was refused ({config_error or 'no answer'}), so "
                                             "whether acknowledged writes survive a restart is unknown")
    values = {_text(k).lower(): _text(v).lower() for k, v in config.items()}
    appendonly, appendfsync = values.get("appendonly"), values.get("appendfsync")
    if appendonly == "no":
        return Durability("none", server, "appendonly no: acknowledged writes since the last snapshot are "
                                          "lost when the server stops")
    level = _AOF_LEVELS.get(appendfsync or "") if appendonly == "yes" else None
    if level is None:
        return Durability("unknown", server, f"CONFIG GET answered appendonly={appendonly!r}, "
                                             f"appendfsync={appendfsync!r}")
    return Durability(level, server, f"appendonly yes, appendfsync {appendfsync}: {_LEVEL_WORDS[level]}")


def with_journal(durability: Durability) -> Durability:
    """The durability of progress updates with the local journal (``revenge.journal``): every
    acknowledged one is fsynced locally and replayed after the server restarted from a snapshot."""
    if durability.level == DURABLE_LEVEL:
        return durability
    return Durability("journal", durability.server,
                      f"{durability.detail}; acknowledged progress updates are also in this instance's "
                      "fsynced journal and replayed after a restart (played/hidden/reset marks are not)")


def refusal(durability: Durability, policy: DurabilityPolicy, store: str) -> str | None:
    """The error to refuse ``store`` ("progress store", …) with, or ``None`` when ``policy`` accepts it."""
    if durability.durable or policy == "accept_loss":
        return None
    fix = ("use Redis with appendonly yes and appendfsync always" if durability.server.startswith("dragonfly")
           else "run the server with appendonly yes and appendfsync always")
    return (f"{store}: acknowledged writes would not survive a restart of the server "
            f"({durability.server}: {durability.detail}). To fix it, {fix}; or set store_durability = "
            f"\"accept_loss\" (REVENGE_STORE_DURABILITY=accept_loss) to run anyway and accept losing them")
