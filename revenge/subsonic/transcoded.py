"""``stream`` transcoded: a progressive PyAV encode sent as it is made. Each chunk is encoded on the
engine's workers (``HlsEngine.run_encode``: a full queue is a 503 with Retry-After before anything is
sent); a client that goes away cancels the stream, and the encoder is closed.

The stream is a playback session of the client's device, without heartbeats: after each chunk the
session (and through it the progress) gets the position the listener can have reached, the audio
sent but never more than the wall time since the start (a player buffers ahead), and the session ends
with the stream.

Content-Length: MP3's is exact (the Info frame says the stream's bytes), so it is always sent. Opus
and AAC announce ``length_bound`` when ``estimateContentLength`` asks, and the body is padded to it
with zeros (Ogg and ADTS demuxers skip them): what is announced is what is sent."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import anyio
from starlette.responses import Response, StreamingResponse

from revenge.hls.progressive import ProgressiveTranscode, StreamFormat
from revenge.library.model import Item
from revenge.playback.decide import Decision
from revenge.playback.sessions import PlayerState, SessionCapReached
from revenge.subsonic.envelope import GENERIC, SubsonicError
from revenge.subsonic.protocol import Call, device_of

log = logging.getLogger("revenge.subsonic")


def heard_ms(offset_ms: int, sent_ms: int, elapsed_ms: int) -> int:
    """Where a listener of a stream can be: what was sent, at most the wall time since the start. Pure."""
    return offset_ms + min(sent_ms, max(0, elapsed_ms))


def fitted(chunk: bytes, sent: int, length: int | None) -> bytes:
    """What of ``chunk`` goes out after ``sent`` bytes of a body announced as ``length`` bytes
    (None: no length, all of it). Pure."""
    return chunk if length is None else chunk[: max(0, length - sent)]


async def transcoded(call: Call, item: Item, fmt: StreamFormat, kbps: int, offset: int) -> Response:
    engine, sessions = call.state.hls, call.state.sessions
    estimate = call.bool("estimateContentLength", False)
    encoder = await engine.run_encode(lambda: ProgressiveTranscode(item, fmt, kbps, float(offset), estimate))
    try:
        first = await engine.run_encode(encoder.next_chunk)  # an overload is a 503, not a cut stream
        session = await sessions.start(call.user.id, device_of(call), item.id,
                                       Decision("direct", ("transcoded",), (f"{fmt.name}-{kbps}",)),
                                       offset * 1000, 0)
    except SessionCapReached:
        encoder.close()
        raise SubsonicError(GENERIC, "Too many playback sessions for this user") from None
    except BaseException:
        encoder.close()
        raise
    user_id, started = call.user.id, time.monotonic()
    # MP3's length is exact, so always announced; the others' bound only when asked (and padded to).
    length = encoder.content_length if encoder.content_length is not None else (
        encoder.length_bound if estimate else None)

    async def report(state: PlayerState) -> None:
        elapsed = int((time.monotonic() - started) * 1000)
        with contextlib.suppress(Exception):  # progress is best effort here: the audio goes on
            await sessions.heartbeat(user_id, session.id, heard_ms(offset * 1000, encoder.sent_ms, elapsed),
                                     state)

    async def body() -> AsyncIterator[bytes]:
        try:
            chunk, sent = first, 0
            while chunk:
                piece = fitted(chunk, sent, length)
                if len(piece) < len(chunk):
                    log.warning("stream of %s passed its announced %d bytes: cut there", item.id, length)
                if piece:
                    sent += len(piece)
                    yield piece
                if length is not None and sent >= length:
                    break
                await report("playing")
                chunk = await engine.run_encode(encoder.next_chunk)
            if length is not None and sent < length:
                yield bytes(length - sent)  # the announced length: zeros the demuxers skip
        finally:
            with contextlib.suppress(Exception):
                encoder.close()  # quick (no encode): here, even when the pool is full or shut
            # Shielded: a client that went away cancels the stream, and the session must still end.
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await report("stopped")
                with contextlib.suppress(Exception):
                    await sessions.stop(user_id, session.id)

    headers = {"cache-control": "no-store", "x-content-duration": f"{item.duration_ms / 1000 - offset:.3f}"}
    if length is not None:  # for MP3 also what lets FFmpeg trust its Info frame on a stream
        headers["content-length"] = str(length)
    return StreamingResponse(body(), media_type=fmt.media_type, headers=headers)
