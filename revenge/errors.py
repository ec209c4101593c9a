"""The failures every layer may raise and the web faces answer alike: a leaf module, importing nothing
of ``revenge``, so stores, engines and services can raise them without knowing about HTTP.

``revenge.web.errors`` maps both to 503 + ``Retry-After`` in one place (its exception handlers, used by
the fast path too).
"""

from __future__ import annotations

import errno


class StoreUnavailable(Exception):
    """A store cannot be reached or refused the write; nothing of the operation was acknowledged.

    For a batch, the whole batch failed: no update of it may be reported as applied.
    """

    retry_after = 1  # seconds a client should wait before it tries again


class Overloaded(Exception):
    """A bounded queue is full: the work was not accepted, and the client should retry shortly."""

    retry_after = 1
    code = "overloaded"  # the error code of the 503 answer

    def __init__(self, message: str, public_message: str | None = None) -> None:
        super().__init__(message)
        # What the client is told (the exception's own text may hold internals such as queue sizes).
        self.public_message = public_message or "the server is busy; retry shortly"


class OutOfDescriptors(Overloaded):
    """The process has no file descriptor left (EMFILE, ENFILE): a moment's overload, not a broken file."""

    code = "unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, "the server has too many open files; try again shortly")


def raise_if_out_of_descriptors(exc: BaseException) -> None:
    """``OutOfDescriptors`` in place of ``exc`` when it says the process ran out of file descriptors."""
    if getattr(exc, "errno", None) in (errno.EMFILE, errno.ENFILE):
        raise OutOfDescriptors(str(exc)) from exc
