"""Which album, artists and genres a track belongs to, and the ids that follow from it."""

from __future__ import annotations

from revenge.library.grouping import (
    VARIOUS_ARTISTS,
    album_artists,
    album_id,
    artist_ref,
    genre_ref,
    summarize_album,
    track_artists,
)
from revenge.library.model import ITEM_ID_RE
from revenge.library.tags import Tags

MB = "0383dadf-2a4e-4d10-a46a-e9e041da8eb3"


def test_ids_look_like_item_ids_and_are_deterministic() -> None:
    aid = album_id(Tags(album="LP", artists=("A",)))
    assert aid is not None and ITEM_ID_RE.fullmatch(aid)
    assert aid == album_id(Tags(album="LP", artists=("A",)))
    assert album_id(Tags(artists=("A",))) is None  # no album title, no album


def test_musicbrainz_release_id_groups_whatever_the_names() -> None:
    one = Tags(album="Live", album_artists=("A",), mb_release_id=MB)
    other = Tags(album="Live (Remaster)", album_artists=("A & B",), mb_release_id=MB.upper())
    assert album_id(one) == album_id(other)
    # Same names, another release: another album. A junk id is ignored.
    another = MB.replace("0", "1")
    assert album_id(Tags(album="Live", album_artists=("A",), mb_release_id=another)) != album_id(one)
    assert album_id(Tags(album="Live", album_artists=("A",), mb_release_id="junk")) == album_id(
        Tags(album="Live", album_artists=("A",)))


def test_case_width_and_whitespace_do_not_split_an_album() -> None:
    assert album_id(Tags(album="Blue  Train", album_artists=("John Coltrane",))) == album_id(
        Tags(album="blue train ", album_artists=("JOHN  COLTRANE",)))
    assert album_id(Tags(album="Ｂｌｕｅ", album_artists=("X",))) == album_id(
        Tags(album="blue", album_artists=("x",)))


def test_discs_and_folders_are_not_part_of_the_album() -> None:
    disc1 = Tags(album="Double", album_artists=("A",), disc_number=1, track_number=1)
    disc2 = Tags(album="Double", album_artists=("A",), disc_number=2, track_number=1, disc_subtitle="Two")
    assert album_id(disc1) == album_id(disc2)


def test_compilation_with_many_track_artists_is_one_album() -> None:
    tracks = [Tags(album="Hits", artists=(name,), compilation=True) for name in ("A", "B", "C")]
    assert len({album_id(t) for t in tracks}) == 1
    assert album_artists(tracks[0]) == (artist_ref(VARIOUS_ARTISTS),)
    # Spelled as an album artist instead of the flag: the same album.
    assert album_id(Tags(album="Hits", artists=("D",), album_artists=("Various",))) == album_id(tracks[0])
    # Without the flag or album artist, tracks of other artists are other albums.
    assert album_id(Tags(album="Hits", artists=("A",))) != album_id(Tags(album="Hits", artists=("B",)))


def test_artists_pair_with_musicbrainz_ids_by_position() -> None:
    refs = track_artists(Tags(artists=("A", "B"), mb_artist_ids=(MB, "x")))
    assert [(r.name, r.mb_id) for r in refs] == [("A", MB), ("B", None)]
    unpaired = track_artists(Tags(artists=("A", "B"), mb_artist_ids=(MB,)))
    assert [r.mb_id for r in unpaired] == [None, None]
    assert artist_ref("a").id == artist_ref("A ").id and artist_ref("A").id != artist_ref("B").id
    assert track_artists(Tags(artists=("A", "a"))) == (artist_ref("A"),)


def test_album_artist_falls_back_to_track_artists() -> None:
    assert album_artists(Tags(album="LP", artists=("Solo",))) == (artist_ref("Solo"),)


def test_genre_ids_fold_case() -> None:
    assert genre_ref("Hip Hop")[0] == genre_ref("hip  hop")[0] != genre_ref("Rock")[0]


def test_summary_takes_the_most_common_values() -> None:
    tracks = [Tags(album="LP", album_artists=("A",), year=2001, disc_number=1, label="L"),
              Tags(album="LP", album_artists=("A",), year=2001, disc_number=2, label="L"),
              Tags(album="lp", album_artists=("A",), year=1999, disc_number=2)]
    summary = summarize_album(tracks)
    assert (summary.name, summary.artist, summary.year, summary.disc_count, summary.label) == (
        "LP", "A", 2001, 2, "L")
    assert not summary.compilation
    various = summarize_album([Tags(album="Hits", artists=("X",), compilation=True)])
    assert various.compilation and various.artist == VARIOUS_ARTISTS
