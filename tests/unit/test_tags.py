"""Tags from each format's raw fields (hand-built dicts as mutagen gives them), and from real files
tagged by mutagen."""

from __future__ import annotations

from pathlib import Path

import pytest

from revenge.library.tags import (
    Tags,
    id3_fields,
    loose_fields,
    mp4_fields,
    parse_db,
    parse_total,
    r128_gain,
    read_file_tags,
    split_names,
    tags_from_fields,
    tags_from_json,
)
from tests.mediagen import write_audio

MB = "0383dadf-2a4e-4d10-a46a-e9e041da8eb3"
MB2 = "1b022e01-4da6-387b-8658-8678046e4cef"


def test_vorbis_repeated_fields_are_several_values() -> None:
    raw = loose_fields([("ARTIST", "Alpha"), ("artist", "Beta"), ("GENRE", "Jazz"), ("GENRE", "Soul"),
                        ("TITLE", " Song "), ("TRACKNUMBER", "3"), ("TRACKTOTAL", "12"),
                        ("DISCNUMBER", "1/2"),
                        ("ALBUMARTIST", "Alpha"), ("COMPILATION", "1"), ("DATE", "2003-04-05"),
                        ("ORIGINALDATE", "1999"), ("MUSICBRAINZ_ALBUMID", MB), ("LABEL", "Blue Note"),
                        ("REPLAYGAIN_TRACK_GAIN", "-6.48 dB"), ("REPLAYGAIN_TRACK_PEAK", "0.988"),
                        ("REPLAYGAIN_ALBUM_GAIN", "+1.5 dB"), ("BPM", "120"), ("DISCSUBTITLE", "Live")])
    tags = tags_from_fields(raw)
    assert tags.artists == ("Alpha", "Beta") and tags.artist == "Alpha; Beta"
    assert tags.genres == ("Jazz", "Soul") and tags.title == "Song"
    assert (tags.track_number, tags.track_total, tags.disc_number, tags.disc_total) == (3, 12, 1, 2)
    assert tags.compilation and (tags.date, tags.year, tags.original_year) == ("2003-04-05", 2003, 1999)
    assert tags.mb_release_id == MB and tags.label == "Blue Note" and tags.disc_subtitle == "Live"
    assert (tags.rg_track_gain, tags.rg_track_peak, tags.rg_album_gain) == (-6.48, 0.988, 1.5)
    assert tags.bpm == 120.0


def test_id3_frames_map_onto_the_same_fields() -> None:
    frames = {
        "TIT2": ["Title"], "TSOT": ["Title, The"], "TPE1": ["One", "Two"], "TPE2": ["Band"],
        "TSO2": ["Band, The"], "TALB": ["Record"], "TSOA": ["Record, A"], "TRCK": ["2/9"], "TPOS": ["2/2"],
        "TSST": ["Side B"], "TDRC": ["2010"], "TDOR": ["1970-01-01"], "TCON": ["Rock", "Pop"], "TCMP": ["1"],
        "UFID:http://musicbrainz.org": ["rec-id"], "TXXX:MusicBrainz Release Track Id": ["track-id"],
        "TXXX:MusicBrainz Album Id": [MB], "TXXX:MusicBrainz Release Group Id": [MB2],
        "TXXX:MusicBrainz Artist Id": ["a1", "a2"], "TXXX:MusicBrainz Album Artist Id": ["b1"],
        "TXXX:REPLAYGAIN_TRACK_GAIN": ["-3.00 dB"], "TXXX:replaygain_album_peak": ["1.02"],
        "TBPM": ["98"], "TPUB": ["Label"], "COMM::eng": ["Nice"], "COMM:iTunNORM:eng": ["0000 0000"],
    }
    tags = tags_from_fields(id3_fields(frames))
    assert tags.artists == ("One", "Two") and tags.album_artists == ("Band",)
    assert (tags.title_sort, tags.album_sort, tags.album_artist_sort) == (
        "Title, The", "Record, A", "Band, The")
    assert (tags.track_number, tags.track_total, tags.disc_number, tags.disc_total) == (2, 9, 2, 2)
    assert tags.disc_subtitle == "Side B" and tags.year == 2010 and tags.original_year == 1970
    assert tags.genres == ("Rock", "Pop") and tags.compilation
    assert (tags.mb_recording_id, tags.mb_track_id, tags.mb_release_id, tags.mb_release_group_id) == (
        "rec-id", "track-id", MB, MB2)
    assert tags.mb_artist_ids == ("a1", "a2") and tags.mb_album_artist_ids == ("b1",)
    assert (tags.rg_track_gain, tags.rg_album_peak, tags.bpm) == (-3.0, 1.02, 98.0)
    assert tags.label == "Label" and tags.comment == "Nice"  # a described COMM is some tool's data


def test_mp4_atoms_and_freeform() -> None:
    atoms = {
        "\xa9nam": ["T"], "\xa9ART": ["Solo"], "aART": ["Solo"], "\xa9alb": ["LP"], "trkn": ["4/10"],
        "disk": ["1/1"], "\xa9day": ["2021-06-01T00:00:00Z"], "\xa9gen": ["Ambient"], "cpil": ["0"],
        "tmpo": ["70"], "----:com.apple.iTunes:MusicBrainz Album Id": [MB],
        "----:com.apple.iTunes:replaygain_track_gain": ["-1.00 dB"],
        "----:com.apple.iTunes:ARTISTS": ["Solo"],
        "----:com.apple.iTunes:LABEL": ["Warp"],
    }
    tags = tags_from_fields(mp4_fields(atoms))
    assert (tags.title, tags.artists, tags.album, tags.track_number, tags.track_total) == (
        "T", ("Solo",), "LP", 4, 10)
    assert tags.year == 2021 and not tags.compilation and tags.bpm == 70.0
    assert tags.mb_release_id == MB and tags.rg_track_gain == -1.0 and tags.label == "Warp"


def test_picard_artists_win_over_the_display_string() -> None:
    raw = loose_fields([("ARTIST", "A feat. B"), ("ARTISTS", "A"), ("ARTISTS", "B")])
    assert tags_from_fields(raw).artists == ("A", "B")


def test_opus_r128_gains_are_converted_to_the_replaygain_reference() -> None:
    # Q7.8 relative to -23 LUFS: -1280/256 = -5 dB there is 0 dB at ReplayGain's -18 LUFS.
    raw = loose_fields([("R128_TRACK_GAIN", "-1280"), ("R128_ALBUM_GAIN", "256")])
    tags = tags_from_fields(raw)
    assert (tags.rg_track_gain, tags.rg_album_gain) == (0.0, 6.0)
    both = tags_from_fields(loose_fields([("R128_TRACK_GAIN", "0"), ("REPLAYGAIN_TRACK_GAIN", "-2 dB")]))
    assert both.rg_track_gain == -2.0
    assert r128_gain("junk") is None and r128_gain("1.5") is None


def test_separators_split_only_where_configured() -> None:
    raw = loose_fields([("ARTIST", "AC/DC"), ("ALBUMARTIST", "X; Y")])
    assert tags_from_fields(raw).artists == ("AC/DC",)
    split = tags_from_fields(raw, artist_separators=(";", "/"))
    assert split.artists == ("AC", "DC") and split.album_artists == ("X", "Y")
    assert split_names(["A", "a", " ", "B"], ()) == ("A", "B")  # blanks and case duplicates dropped


@pytest.mark.parametrize(("text", "value"), [
    ("-6.48 dB", -6.48), ("+1.2", 1.2), ("0.98", 0.98), (".5 DB", 0.5), ("nan", None), ("1e9", None),
    ("", None), (None, None), ("-6,5 dB", None), ("99999", None),
])
def test_parse_db(text: str | None, value: float | None) -> None:
    assert parse_db(text) == value


@pytest.mark.parametrize(("text", "total"), [("3/12", 12), ("3 of 12", 12), ("3", None), ("3/0", None),
                                             ("3/", None), (None, None)])
def test_parse_total(text: str | None, total: int | None) -> None:
    assert parse_total(text) == total


def test_json_round_trip_and_old_keys() -> None:
    tags = Tags(title="t", artists=("a", "b"), genres=("g",), rg_track_gain=-1.0, compilation=True)
    assert tags_from_json(tags.as_json()) == tags
    old = {"title": "x", "artist": "old key", "artists": ["a"]}
    assert tags_from_json(old) == Tags(title="x", artists=("a",))


def test_real_files_tagged_by_mutagen(tmp_path: Path) -> None:
    from mutagen.flac import FLAC
    from mutagen.id3 import ID3, TPE1, TXXX
    from mutagen.mp4 import MP4, MP4FreeForm
    from mutagen.oggopus import OggOpus

    flac = write_audio(tmp_path / "a.flac", samples=4_800).path
    f = FLAC(flac)
    f["ARTIST"] = ["Alpha", "Beta"]
    f["GENRE"] = ["Jazz", "Soul"]
    f["REPLAYGAIN_TRACK_GAIN"] = "-4.00 dB"
    f.save()
    tags = read_file_tags(flac)
    assert tags.artists == ("Alpha", "Beta") and tags.genres == ("Jazz", "Soul")
    assert tags.rg_track_gain == -4.0

    mp3 = write_audio(tmp_path / "a.mp3", samples=4_800).path
    id3 = ID3()
    id3.add(TPE1(encoding=3, text=["One", "Two"]))
    id3.add(TXXX(encoding=3, desc="MusicBrainz Album Id", text=[MB]))
    id3.save(mp3)
    tags = read_file_tags(mp3)
    assert tags.artists == ("One", "Two") and tags.mb_release_id == MB

    m4a = write_audio(tmp_path / "a.m4a", samples=4_800).path
    mp4 = MP4(m4a)
    mp4["\xa9ART"] = ["Solo"]
    mp4["trkn"] = [(4, 10)]
    mp4["cpil"] = True
    mp4["----:com.apple.iTunes:replaygain_album_gain"] = [MP4FreeForm(b"-2.50 dB")]
    mp4.save()
    tags = read_file_tags(m4a)
    assert (tags.artists, tags.track_number, tags.track_total, tags.compilation, tags.rg_album_gain) == (
        ("Solo",), 4, 10, True, -2.5)

    opus = write_audio(tmp_path / "a.opus", samples=4_800, rate=48_000).path
    o = OggOpus(opus)
    o["R128_TRACK_GAIN"] = "-2560"
    o.save()
    assert read_file_tags(opus).rg_track_gain == -5.0

    wav = write_audio(tmp_path / "a.wav", samples=4_800).path  # no tags mutagen reads: PyAV's
    assert read_file_tags(wav, [("artist", "From FFmpeg")]).artists == ("From FFmpeg",)


def test_formats_without_a_mapping_keep_ffmpegs_tags(tmp_path: Path) -> None:
    """WMA: mutagen reads ASF tags (a list, like Vorbis comments, but of typed values): FFmpeg's
    reading is used, not an empty mapping."""
    import av
    import numpy as np

    from revenge.library.probe import probe_file

    path = tmp_path / "a.wma"
    with av.open(str(path), "w", format="asf") as container:
        container.metadata.update({"artist": "Windows Artist", "title": "WT"})
        stream = container.add_stream("wmav2", rate=44_100, layout="stereo")
        stream.bit_rate = 128_000
        frame = av.AudioFrame.from_ndarray(np.zeros((2, 8192), dtype=np.float32), format="fltp",
                                           layout="stereo")
        frame.sample_rate = 44_100
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    tags = probe_file(path).tags
    assert (tags.artists, tags.title) == (("Windows Artist",), "WT")
