"""Cover art: a cached resized picture vs a static file of the same size, and the resize itself.

1. Requests/s of ``GET /api/v1/art/{id}?size=512`` (already resized, on disk) from the real app vs a
   bare Starlette app whose one route is a ``FileResponse`` of a file with the same bytes. Both run the
   same way: their own process, uvicorn with uvloop + httptools, one worker; the client is a third
   process (``revenge.loadtest.http``, keep-alive, ``--concurrency`` connections). Rounds alternate
   A, B, A, B…; the figures are medians. Goal: ratio ≥ 0.8. Also against a bare route that reads the
   file in one worker-thread call (how the art route reads it): the cost of auth and the lookups.
2. The resize of a 3000 × 3000 JPEG to 512 (and 1200): Pillow as ``revenge.library.art.render`` does it
   (``draft`` + LANCZOS), Pillow without ``draft``, and pyvips ``thumbnail_buffer`` when it imports;
   median seconds and peak RSS, each in a fresh process.

    .venv/bin/python benchmarks/bench_art.py [--quick] [--out bench-results/art.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from revenge.library.art import art_id_for  # noqa: E402
from revenge.loadtest.http import HttpClient  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_uvicorn(app: Any, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", loop="uvloop", http="httptools",
                access_log=False, lifespan="on")


def serve_static(path: str, port: int) -> None:
    import anyio.to_thread
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, Response
    from starlette.routing import Route

    async def endpoint(request: Any) -> FileResponse:
        return FileResponse(path, media_type="image/jpeg")

    def read() -> bytes:
        with open(path, "rb") as f:
            return f.read()

    async def read_endpoint(request: Any) -> Response:  # what the art route does, minus auth and lookups
        return Response(await anyio.to_thread.run_sync(read), media_type="image/jpeg")

    _run_uvicorn(Starlette(routes=[Route("/static.jpg", endpoint), Route("/read.jpg", read_endpoint)]), port)


def serve_app(data_dir: str, music: str, port: int) -> None:
    from revenge.app import create_app
    from tests.live import test_settings

    _run_uvicorn(create_app(test_settings(Path(data_dir), library=(Path(music),))), port)


@contextlib.contextmanager
def server(args: list[str], url: str) -> Iterator[None]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, __file__, *args], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])), 1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


async def _rate(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> float:
    client = HttpClient(headers=headers, max_idle_per_origin=concurrency)
    done = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            response = await client.request("GET", url)
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status}")
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    await client.aclose()
    return done / elapsed


def rate(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> float:
    import uvloop

    return uvloop.run(_rate(url, headers, seconds, concurrency))


def wait_ready(url: str, headers: dict[str, str]) -> None:
    import httpx

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, headers=headers, timeout=10).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{url} never answered 200")


def big_jpeg(side: int = 3000) -> bytes:
    """A photo-like 3000 × 3000 JPEG (noise over gradients: a flat colour would compress to nothing)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:side, 0:side]
    base = np.stack([(x * 255 // side), (y * 255 // side), ((x + y) * 127 // side)], axis=-1)
    pixels = np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def _peak_rss_kib() -> int:
    """VmHWM: this process's peak RSS (``ru_maxrss`` would carry the parent's peak over ``exec``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def resize_child(kind: str, source: str, size: int, repeats: int) -> None:
    """In a fresh process: median seconds of one resize and the peak RSS it took (MiB, over the base)."""
    data = Path(source).read_bytes()
    if kind == "vips":
        sys.path.append(os.environ.get("VIPS_PATH", "/tmp/vipsenv"))
        import pyvips

        def once() -> bytes:
            return bytes(pyvips.Image.thumbnail_buffer(data, size).jpegsave_buffer(Q=85))
    elif kind == "pillow":
        from revenge.library.art import render

        def once() -> bytes:
            return render(data, size, "jpeg")
    else:
        from PIL import Image

        def once() -> bytes:
            with Image.open(io.BytesIO(data)) as image:
                image = image.convert("RGB")
            image.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
            out = io.BytesIO()
            image.save(out, "JPEG", quality=85)
            return out.getvalue()
    base = _peak_rss_kib()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    peak = _peak_rss_kib()
    print(orjson.dumps({"seconds": statistics.median(times), "peak_rss_mib": round((peak - base) / 1024, 1)})
          .decode())


def resize_figures(source: Path, repeats: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for kind in ("pillow", "pillow_no_draft", "vips"):
        for size in (512, 1200):
            run = subprocess.run([sys.executable, __file__, "--resize-child", kind, str(source), str(size),
                                  str(repeats)], capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": str(ROOT)})
            if run.returncode != 0:
                figures[f"{kind}_{size}"] = {"error": run.stderr.strip().splitlines()[-1:]}
                continue
            figures[f"{kind}_{size}"] = orjson.loads(run.stdout.strip().splitlines()[-1])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rounds, seconds, repeats = (3, 2.0, 3) if args.quick else (5, 5.0, 7)

    from tests.artgen import attach_with_ffmpeg
    from tests.live import add_user
    from tests.mediagen import write_audio

    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-art-") as tmp:
        base = Path(tmp)
        cover = base / "cover.jpg"
        cover.write_bytes(big_jpeg())
        result["resize"] = resize_figures(cover, repeats)
        print(orjson.dumps(result["resize"], option=orjson.OPT_INDENT_2).decode(), flush=True)

        music = base / "music"
        write_audio(music / "A" / "t.mp3", samples=44_100)
        attach_with_ffmpeg(music / "A" / "t.mp3", cover)
        data = base / "data"
        key = add_user(data, "bench")
        headers = {"Authorization": f"Bearer {key}"}
        app_port, static_port = _free_port(), _free_port()
        art_url = f"http://127.0.0.1:{app_port}/api/v1/art/{art_id_for(cover.read_bytes())}?size=512"
        static_url = f"http://127.0.0.1:{static_port}/static.jpg"
        with server(["--serve-app", str(data), str(music), str(app_port)], art_url):
            wait_ready(art_url, headers)  # the scan indexed it and the first request resized it
            cached = next((data / "art-cache").glob("*-512.jpeg"))
            static = base / "static.jpg"
            static.write_bytes(cached.read_bytes())
            with server(["--serve-static", str(static), str(static_port)], static_url):
                wait_ready(static_url, headers)
                rate(art_url, headers, 1.0, args.concurrency)  # warm both
                rate(static_url, headers, 1.0, args.concurrency)
                read_url = static_url.replace("/static.jpg", "/read.jpg")
                art_rates, static_rates, read_rates = [], [], []
                for _ in range(rounds):
                    art_rates.append(rate(art_url, headers, seconds, args.concurrency))
                    static_rates.append(rate(static_url, headers, seconds, args.concurrency))
                    read_rates.append(rate(read_url, headers, seconds, args.concurrency))
        result["serve"] = {
            "bytes": static.stat().st_size, "concurrency": args.concurrency, "rounds": rounds,
            "art_rps": round(statistics.median(art_rates)),
            "static_rps": round(statistics.median(static_rates)),
            "art_rps_all": [round(r) for r in art_rates], "static_rps_all": [round(r) for r in static_rates],
            "ratio": round(statistics.median(art_rates) / statistics.median(static_rates), 3),
            # a bare route that reads the file in one worker-thread call, as the art route does
            "read_rps": round(statistics.median(read_rates)),
            "ratio_to_read": round(statistics.median(art_rates) / statistics.median(read_rates), 3),
        }
    text = orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-static":
        serve_static(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--serve-app":
        serve_app(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--resize-child":
        resize_child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(main())
