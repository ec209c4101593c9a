"""``stream`` transcoded: a progressive PyAV encode sent as it is made. Each chunk is encoded on the
engine's workers (``HlsEngine.run_encode``: a full queue is a 503 with Retry-After before anything is
sent); a client that goes away cancels the stream, and the encoder is closed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.responses import Response, StreamingResponse

from revenge.hls.progressive import ProgressiveTranscode, StreamFormat
from revenge.library.model import Item
from revenge.subsonic.protocol import Call


async def transcoded(call: Call, item: Item, fmt: StreamFormat, kbps: int, offset: int) -> Response:
    engine = call.state.hls
    encoder = await engine.run_encode(lambda: ProgressiveTranscode(item, fmt, kbps, float(offset)))
    try:
        first = await engine.run_encode(encoder.next_chunk)  # an overload is a 503, not a cut stream
    except BaseException:
        encoder.close()
        raise

    async def body() -> AsyncIterator[bytes]:
        try:
            chunk = first
            while chunk:
                yield chunk
                chunk = await engine.run_encode(encoder.next_chunk)
        finally:
            with contextlib.suppress(Exception):
                encoder.close()  # quick (no encode): here, even when the pool is full or shut

    headers = {"cache-control": "no-store", "x-content-duration": f"{item.duration_ms / 1000 - offset:.3f}"}
    if call.bool("estimateContentLength", False):
        headers["content-length"] = str(int((item.duration_ms / 1000 - offset) * kbps * 125))
    return StreamingResponse(body(), media_type=fmt.media_type, headers=headers)
