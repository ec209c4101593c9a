"""``stream`` transcoded: a progressive PyAV encode sent as it is made. Each chunk is encoded on the
engine's workers (``HlsEngine.run_encode``: a full queue is a 503 with Retry-After before anything is
sent); a client that goes away cancels the stream, and the encoder is closed.

The stream is a playback session of the client's device, without heartbeats: after each chunk the
session (and through it the progress) gets the position the listener can have reached, the audio
sent but never more than the wall time since the start (a player buffers ahead), and the session ends
with the stream."""

from __future__ import annotations

import contextlib
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


def heard_ms(offset_ms: int, sent_ms: int, elapsed_ms: int) -> int:
    """Where a listener of a stream can be: what was sent, at most the wall time since the start. Pure."""
    return offset_ms + min(sent_ms, max(0, elapsed_ms))


async def transcoded(call: Call, item: Item, fmt: StreamFormat, kbps: int, offset: int) -> Response:
    engine, sessions = call.state.hls, call.state.sessions
    encoder = await engine.run_encode(lambda: ProgressiveTranscode(item, fmt, kbps, float(offset)))
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

    async def report(state: PlayerState) -> None:
        elapsed = int((time.monotonic() - started) * 1000)
        with contextlib.suppress(Exception):  # progress is best effort here: the audio goes on
            await sessions.heartbeat(user_id, session.id, heard_ms(offset * 1000, encoder.sent_ms, elapsed),
                                     state)

    async def body() -> AsyncIterator[bytes]:
        try:
            chunk = first
            while chunk:
                yield chunk
                await report("playing")
                chunk = await engine.run_encode(encoder.next_chunk)
        finally:
            with contextlib.suppress(Exception):
                encoder.close()  # quick (no encode): here, even when the pool is full or shut
            # Shielded: a client that went away cancels the stream, and the session must still end.
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await report("stopped")
                with contextlib.suppress(Exception):
                    await sessions.stop(user_id, session.id)

    headers = {"cache-control": "no-store", "x-content-duration": f"{item.duration_ms / 1000 - offset:.3f}"}
    if encoder.content_length is not None:  # MP3: exact, so always (FFmpeg trims the end only then)
        headers["content-length"] = str(encoder.content_length)
    elif call.bool("estimateContentLength", False):
        headers["content-length"] = str(int((item.duration_ms / 1000 - offset) * kbps * 125))
    return StreamingResponse(body(), media_type=fmt.media_type, headers=headers)
