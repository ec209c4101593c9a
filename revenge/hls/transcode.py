"""An encoder run: the segments of one rendition, encoded with PyAV, a pure function of the sources.

Segments are encoded in *runs* of ``run_segments`` consecutive segments (the first at a multiple of
it), one encoder per run (:class:`SegmentRun`): a segment's bytes are what its run produces, however
and whenever it is asked for. Pipeline for a run (all positions in samples at the output rate):

1. The plan gives each segment's media range ``[media_start, media_end)``. The encoder is started a
   few frames before the run's first segment (on the frame grid: ``preroll`` frames plus its own
   delay) and fed past each segment's end as far as its last packet needs (the encoder's delay: one
   frame of real look-ahead for AAC; frame by frame up to ``postroll`` more, then a flush, for an
   encoder that holds packets back longer), so the packets we keep were produced with warm MDCT
   overlap and psychoacoustic state, like a continuous encode's: no click at run boundaries, and
   none inside a run, which is one continuous encode. Segment 0 starts at sample 0, exactly as a
   continuous encode does.
2. :func:`~revenge.hls.decode.read_timeline` decodes that span from the item's files, exactly;
   a ReplayGain rendition scales it (:func:`~revenge.hls.gain.apply_gains`: one factor, or each
   file's on its own samples).
3. Packets whose media time lies in ``[media_start, media_end)`` are kept (the priming rule of
   :mod:`revenge.hls.rendition` decides where media time 0 is); FLAC frames are renumbered to their
   global index; :func:`fmp4.media_segment` wraps them.

Everything here runs in the engine's encode threads (PyAV releases the GIL while coding).
"""

from __future__ import annotations

from collections.abc import Sequence

import av

from revenge.hls import flac_frames, fmp4
from revenge.hls.decode import read_timeline
from revenge.hls.gain import apply_gains
from revenge.hls.plan import Segment
from revenge.hls.rendition import Rendition, make_frame, open_encoder
from revenge.hls.seek_index import SeekIndexes


class SegmentRun:
    """One encoder fed continuously over a *run*: ``rendition.run_segments`` consecutive segments
    starting at a multiple of it. Each segment's bytes are defined as what this run produces, so
    they are the same whenever and in whatever order they are asked for: a fresh run advanced to
    segment *n* gives what a run kept from an earlier request gives.

    Why runs: a fresh AAC encoder is ~1.5x slower over its first few hundred frames (its rate
    control and bit reservoir settle), which a 6-second segment never leaves. Continuing the encoder
    of the previous segment pays that once per run instead of once per segment; a seek into the
    middle of a run pays for the run's earlier segments instead. With ``run_segments = 1`` every
    segment has its own encoder (constant cost, the pre-roll/post-roll scheme of the module docstring).

    Not thread-safe: one thread advances a run at a time (the engine serialises a run's jobs).
    """

    def __init__(self, rendition: Rendition, index: int, indexes: SeekIndexes | None = None) -> None:
        plan, fmt, profile = rendition.plan, rendition.format, rendition.profile
        if not 0 <= index < plan.count:
            raise IndexError(index)
        self.rendition = rendition
        self._indexes = indexes  # the engine's MP3 seek points (None: FFmpeg seeks)
        self.first = index - index % rendition.run_segments
        self.last = min(plan.count, self.first + rendition.run_segments) - 1
        frame = fmt.frame_size
        self._shift = rendition.encoder_delay - rendition.priming  # feed position − packet media time
        # The encoder starts ``preroll`` real frames (plus its own delay) before the run's first
        # kept packet, on the frame grid (delay − priming is a whole number of frames) ...
        lead = (profile.preroll_frames + -(-rendition.encoder_delay // frame)) * frame
        self.fed = max(0, plan.segment(self.first).media_start + self._shift - lead)
        # ... and may be fed up to ``postroll`` frames past the last one (then flushed) when the
        # encoder holds the run's last packets back beyond its delay.
        self._stop = min(plan.total, plan.segment(self.last).media_end + self._shift
                         + profile.postroll_frames * frame)
        # Packets kept: those of the run's segments (not the pre-roll's, not the post-roll's).
        self._keep = (plan.segment(self.first).media_start, plan.segment(self.last).media_end)
        self._ctx: av.AudioCodecContext | None = open_encoder(fmt, rendition.aac_coder)
        self._flushed = False
        self._packets: list[tuple[int, bytes]] = []  # (media position, data) not yet handed out
        self.next_index = self.first

    @property
    def done(self) -> bool:
        return self.next_index > self.last

    @property
    def closed(self) -> bool:
        return self._ctx is None

    def close(self) -> None:
        """Free the encoder now (its codec context holds native threads), not whenever the run is
        garbage; the run cannot advance any more."""
        self._ctx = None

    def advance(self, index: int) -> dict[int, bytes]:
        """Encode on to segment ``index`` (``next_index <= index <= last``): ``moof`` + ``mdat`` of
        every segment completed on the way, by index."""
        if self._ctx is None:
            raise ValueError(f"run {self.first}..{self.last} is closed")
        if not self.next_index <= index <= self.last:
            raise ValueError(f"segment {index} is not ahead in run {self.first}..{self.last} "
                             f"(next {self.next_index})")
        out: dict[int, bytes] = {}
        while self.next_index <= index:
            segment = self.rendition.plan.segment(self.next_index)
            # The packet of the frame fed at position p comes out once p + frame is fed: the input
            # needed for a segment ends at its media end + the shift (more only near the run's end).
            self._feed_until(min(self._stop, segment.media_end + self._shift))
            while not self._complete(segment):
                if not self._feed_until(min(self._stop, self.fed + self.rendition.format.frame_size)):
                    self._flush()
                    break
            out[segment.index] = self._take(segment)
            self.next_index += 1
        return out

    def _complete(self, segment: Segment) -> bool:
        last_packet = segment.media_end - self.rendition.format.frame_size
        return bool(self._packets) and self._packets[-1][0] >= last_packet

    def _feed_until(self, stop: int) -> bool:
        """Feed the timeline up to ``stop``; False when there is nothing left to feed."""
        if stop <= self.fed:
            return False
        fmt, ctx = self.rendition.format, self._ctx
        assert ctx is not None
        pcm = apply_gains(read_timeline(self.rendition, self.fed, stop, self._indexes), self.fed,
                          self.rendition.file_counts, self.rendition.gain)
        # One frame for the whole span: PyAV passes every encoder input through a filter graph
        # that cuts it into frame_size frames anyway (the same frames, pts and samples the encoder
        # saw when fed frame by frame, so the same packets), and a frame built per codec frame in
        # Python cost ~7 % of a listen's CPU (py-spy, issue 18).
        self._collect(ctx.encode(make_frame(pcm, fmt, self.fed)))
        self.fed = stop
        return True

    def _flush(self) -> None:
        if not self._flushed and self._ctx is not None:
            self._flushed = True
            self._collect(self._ctx.encode(None))

    def _collect(self, packets: Sequence[av.Packet]) -> None:
        start, end = self._keep
        for packet in packets:
            if packet.size == 0:
                continue  # FLAC's flush packet: only a STREAMINFO update as side data
            if packet.pts is None:
                raise RuntimeError("encoder produced a packet without pts")
            media = int(packet.pts) + self.rendition.priming
            if start <= media < end:
                self._packets.append((media, bytes(packet)))

    def _take(self, segment: Segment) -> bytes:
        frame = self.rendition.format.frame_size
        kept = [(m, d) for m, d in self._packets if m < segment.media_end]
        self._packets = self._packets[len(kept):]
        positions = [m for m, _ in kept]
        if positions != list(range(segment.media_start, segment.media_end, frame)):
            raise RuntimeError(f"segment {segment.index}: encoder gave {len(kept)} packets at "
                               f"{positions[:3]}…, expected {self.rendition.plan.frames_in(segment)} "
                               f"from {segment.media_start}")
        last_duration = None
        if self.rendition.profile.encoder == "flac":
            packets = [flac_frames.renumber(data, media // frame) for media, data in kept]
            if segment.index == self.rendition.plan.count - 1:
                last_duration = self.rendition.last_duration
        else:
            packets = [data for _, data in kept]
        return fmp4.media_segment(segment.index + 1, segment.media_start, frame, packets, last_duration)


def encode_segment(rendition: Rendition, index: int, indexes: SeekIndexes | None = None) -> bytes:
    """``moof`` + ``mdat`` of segment ``index``: a fresh run advanced to it. Byte-identical whenever
    and in whatever order it is asked for."""
    run = SegmentRun(rendition, index, indexes)
    try:
        return run.advance(index)[index]
    finally:
        run.close()
