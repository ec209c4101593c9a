"""Segment encoding in-process on real generated media: exact decode positions after seeks, exact
resampling and file joins, determinism, fragment continuity, bit-exact FLAC, click-free boundaries."""

from __future__ import annotations

import dataclasses
import random
import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from revenge.config import Settings
from revenge.hls.decode import SourceError, SourceMissing, read_timeline
from revenge.hls.plan import converted_count
from revenge.hls.playlist import media_playlist
from revenge.hls.profiles import PROFILES, Profile
from revenge.hls.rendition import Rendition, prepare_rendition
from revenge.hls.runs import EncoderRuns, run_key
from revenge.hls.seek_index import SeekIndexes
from revenge.hls.transcode import SegmentRun, encode_segment
from revenge.library.model import Item
from tests.hls_support import continuous_stream, decode_file, native_threads, parse_fragment, probed_item
from tests.mediagen import Generated, corrupt_file, write_audio


def rendition(item: Item, profile: str | Profile, seconds: float = 6.0,
              run_segments: int = Settings.encoder_run_segments) -> Rendition:
    p = PROFILES[profile] if isinstance(profile, str) else profile
    return prepare_rendition(item, p, seconds, "twoloop", run_segments)


def stream_of(r: Rendition, order: list[int] | None = None) -> tuple[bytes, list[bytes]]:
    indices = order if order is not None else list(range(r.plan.count))
    segments = {i: encode_segment(r, i) for i in indices}
    ordered = [segments[i] for i in range(r.plan.count)]
    return r.init_segment() + b"".join(ordered), ordered


def reference(path: Path, layout: str, rate: int, count: int) -> np.ndarray:
    """The whole file decoded and converted in one go, trimmed or padded to ``count`` samples."""
    chunks = []
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        for frame in container.decode(audio=0):
            frame.pts = None
            chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
        chunks.extend(f.to_ndarray() for f in resampler.resample(None))
    data = np.concatenate(chunks, axis=1)
    out = np.zeros((data.shape[0], count), dtype=np.float32)
    out[:, : min(count, data.shape[1])] = data[:, :count]
    return out


SEEK_CASES = [
    # (file, rate, channels, tolerance): every source format the decoder seeks in. Lossless and MP3/
    # Opus match bit for bit; FFmpeg's AAC decoder fills noise-substituted bands from a random state
    # that depends on where decoding started (-96 dB here).
    ("tone.flac", 44100, 2, 0.0), ("tone.mp3", 44100, 2, 1e-6), ("tone.m4a", 48000, 1, 1e-4),
    ("tone.opus", 48000, 2, 1e-6), ("tone.wav", 44100, 1, 0.0),
]


@pytest.mark.parametrize(("name", "rate", "channels", "tolerance"), SEEK_CASES)
def test_reads_after_seeks_match_a_full_decode(tmp_path: Path, name: str, rate: int, channels: int,
                                               tolerance: float) -> None:
    g = write_audio(tmp_path / name, seconds=20.0, rate=rate, channels=channels, kind="sine", freq=440)
    item = probed_item([g.path])
    assert item.files[0].sample_count == g.samples  # the probe's exact count (gapless metadata honoured)
    r = rendition(item, "aac-128")
    assert r.format.sample_rate == rate  # no resampling: positions compare one to one
    full = reference(g.path, r.format.layout, rate, g.samples)
    starts = [0, 1, 1023, 5000, 44_099, 100_000, 333_333, g.samples - 50_000, g.samples - 7]
    for start in starts:
        stop = min(g.samples, start + 30_000)
        got = read_timeline(r, start, stop)
        np.testing.assert_allclose(got, full[:, start:stop], rtol=0, atol=tolerance,
                                   err_msg=f"{name} at {start}")
    # Past the declared end there is nothing: the m4a decoder's end padding is cut off.
    assert read_timeline(r, g.samples - 10, g.samples).shape == (r.format.channels, 10)


def test_a_refused_flac_seek_near_the_end_falls_back_to_decoding_from_the_start(tmp_path: Path) -> None:
    # FFmpeg writes FLAC without a SEEKTABLE; seeking in this file near its end fails outright
    # ("Operation not permitted"). The segment must still be exact, not a 422 for the whole item.
    g = write_audio(tmp_path / "long.flac", seconds=60.0, kind="music", freq=110.0)
    item = probed_item([g.path])
    r = rendition(item, "aac-128")
    last = r.plan.count - 1
    assert encode_segment(r, last)  # raised SourceError before the fallback
    full = reference(g.path, r.format.layout, r.format.sample_rate, g.samples)
    start = g.samples - 20_000
    np.testing.assert_array_equal(read_timeline(r, start, g.samples), full[:, start:])


@pytest.mark.parametrize(("name", "rate", "out_rate"), [
    ("low.flac", 22050, 44100), ("high.wav", 96000, 48000), ("odd.flac", 32000, 48000)])
def test_resampled_reads_equal_the_whole_file_resampled(tmp_path: Path, name: str, rate: int,
                                                        out_rate: int) -> None:
    g = write_audio(tmp_path / name, samples=rate * 15 + 77, rate=rate, channels=2, kind="music")
    r = rendition(probed_item([g.path]), "aac-128")
    count = converted_count(g.samples, rate, out_rate)
    assert (r.format.sample_rate, r.plan.total) == (out_rate, count)
    full = reference(g.path, "stereo", out_rate, count + 100)
    assert not full[:, count:].any()  # the whole-file resample yields exactly ceil(n·out/in) samples
    for start in [0, 3, 5000, 123_457, count - 40_000, count - 1000]:
        stop = min(count, start + 20_000)
        np.testing.assert_array_equal(read_timeline(r, start, stop), full[:, start:stop],
                                      err_msg=f"{name} at {start}")


@pytest.fixture(scope="module")
def book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Item, list[Generated]]:
    folder = tmp_path_factory.mktemp("book") / "Author" / "Book"
    # Three formats, rates and layouts. The AAC part comes last: the noise-substituted bands FFmpeg's
    # AAC decoder synthesises near an abrupt end depend on where decoding started, so only lossless
    # and MP3 tails compare sample for sample with a whole-file decode.
    parts = [
        write_audio(folder / "01.mp3", samples=7 * 44100 + 11, rate=44100, channels=2, kind="music"),
        write_audio(folder / "02.flac", samples=4 * 22050 + 3, rate=22050, channels=2, kind="music"),
        write_audio(folder / "03.m4a", samples=5 * 48000 + 5, rate=48000, channels=1, kind="sine", freq=300),
    ]
    return probed_item([p.path for p in parts], "audiobook", "Author/Book"), parts


def test_a_multi_file_book_is_one_exact_timeline(book: tuple[Item, list[Generated]]) -> None:
    item, parts = book
    r = rendition(item, "aac-128")
    # The catalog's exact counts (m4a declares its length in ms: 240005 samples read as 240000).
    counts = [converted_count(f.sample_count, f.sample_rate, 44100) for f in item.files]
    assert (r.format.sample_rate, r.format.channels, r.plan.total) == (44100, 2, sum(counts))
    whole = np.concatenate(
        [reference(p.path, "stereo", 44100, c) for p, c in zip(parts, counts, strict=True)], axis=1)
    joins = np.cumsum(counts)[:-1]
    for join in joins:
        start, stop = int(join) - 3000, int(join) + 3000
        # Upmixing mono 48 kHz and resampling in two steps vs one: float rounding only.
        np.testing.assert_allclose(read_timeline(r, start, stop), whole[:, start:stop], atol=2e-5)
    # A segment crossing a join is encoded like any other.
    seg = next(s for s in r.plan.segments() if s.start < joins[0] < s.end)
    assert parse_fragment(encode_segment(r, seg.index)).sequence == seg.index + 1


ORDER_CASES = [("tone.mp3", "aac-128"), ("music.m4a", "aac-64"), ("tone.flac", "opus-128"),
               ("tone.flac", "flac")]


@pytest.mark.parametrize("run_segments", [1, 4])
@pytest.mark.parametrize(("name", "profile"), ORDER_CASES)
def test_segments_are_byte_identical_in_any_order(tmp_path: Path, name: str, profile: str,
                                                  run_segments: int) -> None:
    # m4a "music" makes FFmpeg's AAC use noise substitution, whose decoder output depends on where
    # decoding started: deterministic seeks keep the segments identical anyway.
    g = write_audio(tmp_path / name, seconds=13.0, rate=44100, channels=2, kind="music")
    r = rendition(probed_item([g.path]), profile, seconds=2.0, run_segments=run_segments)
    _, in_order = stream_of(r)
    order = list(range(r.plan.count))
    random.Random(7).shuffle(order)
    _, shuffled = stream_of(r, order)
    assert in_order == shuffled
    assert encode_segment(r, r.plan.count // 2) == in_order[r.plan.count // 2]


@pytest.mark.parametrize(("name", "rate", "profile"), [
    ("run.flac", 44100, "aac-128"), ("run.flac", 44100, "opus-128"), ("run.flac", 44100, "flac"),
    ("run.mp3", 44100, "aac-128"), ("run.m4a", 48000, "aac-64"),
    ("run.flac", 22050, "aac-128"),  # resampled to 44.1 kHz
])
def test_a_run_continued_piece_by_piece_gives_the_segments_of_fresh_runs(
        tmp_path: Path, name: str, rate: int, profile: str) -> None:
    """A suspended run advanced one request at a time (what the engine does for a listener) gives
    exactly the bytes of a fresh run advanced to each segment, and a fresh run started for a segment
    in the middle of a run produces the run's earlier segments on the way (lossy sources and a
    resampled one too: the run reads its source a segment at a time either way)."""
    g = write_audio(tmp_path / name, seconds=20.0, rate=rate, channels=2, kind="music")
    r = rendition(probed_item([g.path]), profile, seconds=2.0, run_segments=4)
    assert r.plan.count >= 9
    run = SegmentRun(r, 4)
    assert (run.first, run.last, run.next_index) == (4, 7, 4)
    pieces = {**run.advance(4), **run.advance(5), **run.advance(7)}  # 6 comes on the way to 7
    assert sorted(pieces) == [4, 5, 6, 7] and run.done
    assert all(pieces[i] == encode_segment(r, i) for i in pieces)
    assert SegmentRun(r, 6).advance(6).keys() == {4, 5, 6}
    with pytest.raises(ValueError):
        run.advance(8)  # another run's segment
    last = SegmentRun(r, r.plan.count - 1)  # the item's last run may be short
    assert last.last == r.plan.count - 1
    assert last.advance(r.plan.count - 1)[r.plan.count - 1] == encode_segment(r, r.plan.count - 1)


def test_encoder_runs_continue_suspended_runs_and_hand_out_the_segments_on_the_way(tmp_path: Path) -> None:
    g = write_audio(tmp_path / "runs.flac", seconds=20.0, rate=44100, channels=2, kind="music")
    r = rendition(probed_item([g.path]), "aac-128", seconds=2.0, run_segments=4)
    runs = EncoderRuns(max_runs=1, idle_seconds=60)
    assert runs.encode(r, 1) == {0: encode_segment(r, 0), 1: encode_segment(r, 1)}  # fresh run from 0
    assert (runs.started, runs.continued, len(runs)) == (1, 0, 1)
    assert runs.encode(r, 2) == {2: encode_segment(r, 2)}  # continued
    assert (runs.started, runs.continued) == (1, 1)
    assert runs.encode(r, 5) == {4: encode_segment(r, 4), 5: encode_segment(r, 5)}  # the bound evicts 0..3
    assert len(runs) == 1 and runs.started == 2
    assert list(runs.encode(r, 3)) == [0, 1, 2, 3]  # evicted: a fresh run again
    assert runs.started == 3
    assert len(runs) == 1  # segment 3 ended its run (not kept); 5's is still suspended
    assert runs.encode(r, 6) == {6: encode_segment(r, 6)} and runs.continued == 2


def test_expire_closes_the_runs_left_idle_and_keeps_a_run_continued_in_time(tmp_path: Path) -> None:
    g = write_audio(tmp_path / "idle.flac", seconds=12.0, rate=44100, channels=1, kind="music")
    r = rendition(probed_item([g.path]), "aac-64", seconds=1.0, run_segments=4)
    now = [0.0]
    runs = EncoderRuns(max_runs=8, idle_seconds=10, clock=lambda: now[0])
    runs.encode(r, 0)  # run 0..3, suspended before 1
    runs.encode(r, 4)  # run 4..7, suspended before 5
    assert runs.expire() == 0 and len(runs) == 2
    now[0] = 8.0
    runs.encode(r, 1)  # continued before its idle time: its clock restarts
    now[0] = 12.0  # 4..7 was last used 12 s ago, 0..3 4 s ago
    assert runs.expire() == 1 and len(runs) == 1
    assert runs.encode(r, 2) == {2: encode_segment(r, 2)} and runs.continued == 2  # still suspended
    now[0] = 40.0
    assert runs.expire() == 1 and len(runs) == 0
    assert runs.encode(r, 5) == {4: encode_segment(r, 4), 5: encode_segment(r, 5)}  # 4..7 starts afresh
    assert runs.started == 3
    runs.close()
    assert len(runs) == 0


def test_a_closed_run_frees_its_encoder_threads(tmp_path: Path) -> None:
    g = write_audio(tmp_path / "threads.flac", seconds=8.0, rate=44100, channels=2, kind="music")
    r = rendition(probed_item([g.path]), "aac-128", seconds=1.0, run_segments=4)
    encode_segment(r, 0)  # FFmpeg's first encode in the process starts threads it keeps
    before = native_threads()
    suspended = [SegmentRun(r, 0) for _ in range(4)]
    for run in suspended:
        run.advance(0)
    holding = native_threads()
    assert holding >= before + len(suspended)  # each suspended encoder keeps native threads
    for run in suspended:
        run.close()
    assert native_threads() <= before and all(run.closed for run in suspended)
    with pytest.raises(ValueError, match="closed"):
        suspended[0].advance(1)


def test_book_segments_are_byte_identical_in_any_order(book: tuple[Item, list[Generated]]) -> None:
    r = rendition(book[0], "aac-128", seconds=2.0)
    _, in_order = stream_of(r)
    assert [encode_segment(r, i) for i in reversed(range(r.plan.count))] == in_order[::-1]


def test_gain_segments_are_byte_identical_in_any_order_and_apart_from_the_plain_ones(tmp_path: Path) -> None:
    g = write_audio(tmp_path / "tone.flac", seconds=9.0, rate=44100, channels=2, kind="music")
    plain = rendition(probed_item([g.path]), "aac-128", seconds=2.0)
    r = dataclasses.replace(plain, gain=0.5)
    _, in_order = stream_of(r)
    assert [encode_segment(r, i) for i in reversed(range(r.plan.count))] == in_order[::-1]
    assert in_order[1] != encode_segment(plain, 1)
    assert (r.key_name, plain.key_name) == ("aac-128@0.5", "aac-128")
    assert run_key(r, 0) != run_key(plain, 0)



def test_per_file_gain_segments_are_byte_identical_in_any_order(tmp_path: Path) -> None:
    # Two files joined mid-segment, each with its own factor (an album with gain=track).
    files = [write_audio(tmp_path / f"{n}.flac", seconds=s, rate=44100, channels=2, kind="music").path
             for n, s in (("a", 3.3), ("b", 4.0))]
    plain = rendition(probed_item(files), "aac-128", seconds=2.0)
    r = dataclasses.replace(plain, gain=(0.5, 0.25))
    _, in_order = stream_of(r)
    assert [encode_segment(r, i) for i in reversed(range(r.plan.count))] == in_order[::-1]
    same = dataclasses.replace(plain, gain=0.5)
    assert encode_segment(same, 0) == in_order[0]  # before the join: only the first file's factor
    assert encode_segment(same, 1) != in_order[1]  # the segment spanning the join differs
    assert r.key_name.startswith("aac-128@g") and r.key_name not in (plain.key_name, same.key_name)


@pytest.mark.parametrize("profile", ["aac-128", "opus-128", "flac"])
def test_fragments_are_numbered_and_continuous(tmp_path: Path, profile: str) -> None:
    g = write_audio(tmp_path / "tone.flac", seconds=20.0, rate=44100, channels=2, kind="music")
    r = rendition(probed_item([g.path]), profile)
    _, segments = stream_of(r)
    tfdt = 0
    for index, data in enumerate(segments):
        fragment = parse_fragment(data)
        seg = r.plan.segment(index)
        assert fragment.sequence == index + 1
        assert fragment.tfdt == tfdt == seg.media_start
        assert fragment.default_duration == r.format.frame_size
        assert len(fragment.sample_sizes) == r.plan.frames_in(seg)
        tfdt += sum(fragment.durations)
    # Lossy packets all decode a whole frame (the edit list trims the end padding); FLAC's last
    # frame is short and says so.
    padded = r.plan.media_frames * r.format.frame_size
    assert tfdt == (r.plan.media_total if profile == "flac" else padded)


@pytest.mark.parametrize(("rate", "seconds"), [(44100, 40.0), (48000, 13.3)])
def test_flac_trun_durations_add_up_to_the_source_and_the_playlist(tmp_path: Path, rate: int,
                                                                   seconds: float) -> None:
    # What MSE players (hls.js, Shaka) take as the length: the sum of trun sample durations. The
    # last FLAC frame decodes fewer than 4096 samples (40 s at 44.1 kHz: 2720); a trun that kept
    # the default for it made a 40.000 s item last 40.0312 s.
    g = write_audio(tmp_path / "odd.flac", seconds=seconds, rate=rate, channels=2, kind="music")
    assert g.samples % PROFILES["flac"].frame_size
    r = rendition(probed_item([g.path]), "flac")
    _, segments = stream_of(r, order=list(reversed(range(r.plan.count))))
    fragments = [parse_fragment(data) for data in segments]
    assert sum(sum(f.durations) for f in fragments) == g.samples
    assert fragments[-1].durations[-1] == g.samples % PROFILES["flac"].frame_size
    assert all(set(f.durations) == {r.format.frame_size} for f in fragments[:-1])
    extinf = re.findall(r"#EXTINF:([\d.]+),", media_playlist(r.plan))
    assert round(sum(Fraction(x) for x in extinf) * rate) == g.samples
    # The decoded length agrees too (ffmpeg reads the durations; the audio itself is exact).
    out = tmp_path / "out.mp4"
    out.write_bytes(stream_of(r)[0])
    decoded, _ = decode_file(out)
    assert decoded.shape[1] == g.samples


def test_flac_profile_is_bit_exact_across_segments(tmp_path: Path) -> None:
    g = write_audio(tmp_path / "noise.wav", seconds=14.0, rate=48000, channels=2, kind="noise")
    r = rendition(probed_item([g.path]), "flac", seconds=2.0)
    stream, _ = stream_of(r)
    out = tmp_path / "out.mp4"
    out.write_bytes(stream)
    decoded, rate = decode_file(out)
    source, _ = decode_file(g.path)
    assert rate == 48000 and decoded.shape == source.shape == (2, g.samples)
    assert np.array_equal(decoded, source)
    # One FLAC stream: frames numbered 0, 1, 2, … across segments (decoder CRC checks on).
    ctx = av.CodecContext.create("flac", "r")
    ctx.extradata = r.codec_config
    ctx.options = {"err_detect": "crccheck+explode"}
    numbers = []
    for data in stream_of(r)[1]:
        fragment = parse_fragment(data)
        at = 0
        for size in fragment.sample_sizes:
            frame = fragment.mdat[at : at + size]
            at += size
            numbers.append(frame[4:6].decode("utf-8")[0] if frame[4] >= 0x80 else chr(frame[4]))
            list(ctx.decode(av.Packet(frame)))
    assert [ord(c) for c in numbers] == list(range(len(numbers)))


def _click_figures(tmp_path: Path, r: Rendition, source: Path) -> tuple[float, float, list[float]]:
    """(worst boundary dB, 95th percentile of blocks away from boundaries dB, per-boundary dB) of
    |HLS decode − continuous-encode decode|, relative to the signal's RMS."""
    hls_path, ref_path = tmp_path / f"{r.profile.name}-hls.mp4", tmp_path / f"{r.profile.name}-ref.mp4"
    hls_path.write_bytes(stream_of(r)[0])
    ref_path.write_bytes(continuous_stream(r))
    hls, _ = decode_file(hls_path)
    ref, _ = decode_file(ref_path)
    src, _ = decode_file(source)
    n = min(hls.shape[1], ref.shape[1], r.plan.total)
    diff = np.abs(hls[:, :n] - ref[:, :n]).max(axis=0)
    rms = float(np.sqrt(np.mean(src**2)))
    width = 1024
    bounds = [s.start for s in r.plan.segments()[1:]]
    near = [float(diff[b - width : b + width].max()) for b in bounds]
    away_mask = np.ones(n, dtype=bool)
    for b in bounds:
        away_mask[b - 4 * width : b + 4 * width] = False
    away_mask[: 4 * width] = away_mask[n - 4 * width :] = False
    blocks = [float(diff[i : i + 2 * width].max()) for i in range(0, n - 2 * width, 2 * width)
              if away_mask[i : i + 2 * width].all()]

    def db(x: float) -> float:
        return 20 * np.log10(max(x, 1e-12) / rms)

    return db(max(near)), db(float(np.percentile(blocks, 95))), [round(db(x), 1) for x in near]


@pytest.mark.parametrize("profile", ["aac-128", "opus-128"])
def test_segment_boundaries_are_click_free(tmp_path: Path, profile: str) -> None:
    """A 1 kHz sine: around every boundary the HLS output differs from one continuous encode no more
    than it does away from boundaries; the same engine without pre-roll visibly fails this."""
    g = write_audio(tmp_path / "sine.flac", seconds=31.0, rate=44100, channels=1, kind="sine", freq=1000)
    item = probed_item([g.path])
    r = rendition(item, profile)
    assert r.plan.count == 6
    worst, away, per_boundary = _click_figures(tmp_path, r, g.path)
    print(f"\n{profile}: boundary peak diff {per_boundary} dB (worst {worst:.1f}), "
          f"away p95 {away:.1f} dB re signal RMS")
    assert worst <= away + 1.0
    cold = dataclasses.replace(PROFILES[profile], preroll_frames=0, postroll_frames=0)
    worst_cold, away_cold, _ = _click_figures(tmp_path, rendition(item, cold), g.path)
    print(f"{profile} without pre-roll: boundary peak {worst_cold:.1f} dB, away p95 {away_cold:.1f} dB")
    assert worst_cold > away_cold + 10.0


def test_broken_and_missing_sources_raise_source_errors(tmp_path: Path) -> None:
    g = write_audio(tmp_path / "ok.flac", seconds=3.0, rate=44100, channels=2)
    item = probed_item([g.path])
    r = rendition(item, "flac")
    corrupt_file(g.path)
    with pytest.raises(SourceError):
        encode_segment(r, 0)
    with pytest.raises(SourceError):
        rendition(item, "flac")  # reading the sample size fails too
    g.path.unlink()
    with pytest.raises(SourceMissing):
        encode_segment(r, 0)


def _write_24bit_flac(path: Path, rate: int, samples: int) -> None:
    from tests.mediagen import make_signal

    with av.open(str(path), "w") as container:
        stream = container.add_stream("flac", rate=rate, layout="stereo")
        stream.codec_context.format = "s32"
        stream.codec_context.options = {"bits_per_raw_sample": "24"}
        stream.codec_context.open(strict=False)
        signal = (np.round(make_signal(samples, rate, 2, "noise") * (2**23 - 1)).astype(np.int32) << 8)
        for offset in range(0, samples, 4096):
            block = np.ascontiguousarray(signal[:, offset : offset + 4096].T).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="s32", layout="stereo")
            frame.sample_rate, frame.pts = rate, offset
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_24_bit_96_khz_flac_stays_bit_exact(tmp_path: Path) -> None:
    source = tmp_path / "hires.flac"
    _write_24bit_flac(source, 96000, 96000 * 7 + 3)
    r = rendition(probed_item([source]), "flac")
    assert (r.format.sample_rate, r.format.bits_per_sample) == (96000, 24)
    out = tmp_path / "out.mp4"
    out.write_bytes(stream_of(r)[0])
    decoded, _ = decode_file(out)
    original, _ = decode_file(source)
    assert np.array_equal(decoded, original)


def test_surround_is_downmixed_for_aac_and_kept_for_flac(tmp_path: Path) -> None:
    g = write_audio(tmp_path / "surround.wav", seconds=8.0, rate=48000, channels=6, kind="music")
    item = probed_item([g.path])
    for profile, channels in (("aac-128", 2), ("flac", 6)):
        r = rendition(item, profile)
        out = tmp_path / f"{profile}.mp4"
        out.write_bytes(stream_of(r)[0])
        decoded, rate = decode_file(out)
        assert (decoded.shape[0], rate, r.format.channels) == (channels, 48000, channels)
        if profile == "flac":
            assert np.array_equal(decoded, decode_file(g.path)[0])
        else:
            assert decoded.shape[1] - g.samples in range(1024)  # the last frame's padding at most
            assert np.abs(decoded).max() > 0.1  # the downmix carries the signal


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (22050, 1), (48000, 2)])
def test_mp3_seek_points_give_the_same_samples_as_a_full_decode(tmp_path: Path, rate: int,
                                                                channels: int) -> None:
    """MP3 seeks from recorded frame positions (constant cost deep into long files) are exact."""
    g = write_audio(tmp_path / "long.mp3", seconds=40.0, rate=rate, channels=channels, kind="music")
    item = probed_item([g.path])
    plain = rendition(item, "aac-128")
    indexes = SeekIndexes(min_seconds=0)
    full = reference(g.path, plain.format.layout, plain.format.sample_rate, plain.plan.total)
    total = plain.plan.total
    for start in [5000, 77_777, total // 2, total - 30_000, total - 5]:
        stop = min(total, start + 30_000)
        got = read_timeline(plain, start, stop, indexes)
        np.testing.assert_array_equal(got, full[:, start:stop], err_msg=f"at {start}")
        assert np.array_equal(got, read_timeline(plain, start, stop))
    assert indexes.builds == 1  # one header scan for the file, reused by every later seek
    assert encode_segment(plain, 3, indexes) == encode_segment(plain, 3)
