"""The pure rules of cover art (picture choice, folder image names, sizes, formats, ids), the resize
(bytes in, bytes out), and the rules of lyrics (LRC parsing, which source wins)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from revenge.library import art
from revenge.library.art import (
    ART_SIZES,
    DEFAULT_ART_SIZE,
    FRONT_COVER,
    ArtError,
    Picture,
    art_id_for,
    choose_format,
    choose_picture,
    folder_image_rank,
    is_art_id,
    parse_art_size,
    pick_folder_image,
    render,
)
from revenge.library.lyrics import Line, Lyrics, choose_lyrics, parse_lrc
from tests.artgen import picture_bytes

# --- art ---------------------------------------------------------------------------------------


def test_the_front_cover_wins_over_pictures_before_it() -> None:
    back, front, other = Picture(4, b"back"), Picture(FRONT_COVER, b"front"), Picture(0, b"other")
    assert choose_picture([back, other, front]) == front
    assert choose_picture([back, other]) == other  # "other" before a back cover or an artist photo
    assert choose_picture([back, Picture(8, b"artist")]) == back  # else the first in tag order
    assert choose_picture([]) is None
    assert choose_picture([Picture(FRONT_COVER, b"")]) is None  # an empty picture is none


def test_the_first_of_two_front_covers_wins() -> None:
    first, second = Picture(FRONT_COVER, b"1"), Picture(FRONT_COVER, b"2")
    assert choose_picture([first, second]) is first


@pytest.mark.parametrize("name", ["cover.jpg", "Cover.JPG", "folder.png", "FRONT.webp", "album.jpeg"])
def test_folder_image_names(name: str) -> None:
    assert folder_image_rank(name) is not None


@pytest.mark.parametrize("name", ["cover.gif", "covers.jpg", "back.jpg", ".cover.jpg", "cover",
                                  "cover.jpg.txt", "01 cover.jpg"])
def test_other_names_are_not_folder_images(name: str) -> None:
    assert folder_image_rank(name) is None


def test_pick_folder_image_prefers_cover_then_folder_front_album() -> None:
    assert pick_folder_image(["album.jpg", "front.png", "folder.jpg", "Cover.webp", "x.mp3"]) == "Cover.webp"
    assert pick_folder_image(["album.jpg", "front.png"]) == "front.png"
    assert pick_folder_image(["a.mp3", "b.jpg"]) is None
    # Two spellings of one name: the same choice whatever the listing order.
    assert pick_folder_image(["cover.JPG", "Cover.jpg"]) == pick_folder_image(["Cover.jpg", "cover.JPG"])


def test_art_ids_follow_the_bytes() -> None:
    a, b = art_id_for(b"picture one"), art_id_for(b"picture two")
    assert a == art_id_for(b"picture one") and a != b
    assert is_art_id(a) and len(a) == 24
    assert not is_art_id(a + "\n") and not is_art_id(a.upper()) and not is_art_id("../" + a[3:])


def test_sizes_come_from_the_fixed_set() -> None:
    assert parse_art_size(None) == DEFAULT_ART_SIZE == parse_art_size("")
    for size in ART_SIZES:
        assert parse_art_size(str(size)) == size
    for raw in ("100", "0", "-64", "64.0", "²", "1" * 50, " 64", "0064"):
        assert parse_art_size(raw) is None, raw


@pytest.mark.parametrize(("accept", "fmt"), [
    (None, "jpeg"), ("", "jpeg"), ("*/*", "jpeg"), ("image/jpeg", "jpeg"),
    ("image/avif,image/webp,*/*", "webp"), ("IMAGE/WEBP", "webp"), ("image/webp;q=0.5", "webp"),
    ("image/webp;q=0", "jpeg"), ("image/webp;q=junk", "jpeg"), ("text/html, image/webp ; q=1.0", "webp"),
])
def test_webp_only_when_asked_for(accept: str | None, fmt: str) -> None:
    assert choose_format(accept) == fmt


# --- lyrics ------------------------------------------------------------------------------------


def test_lrc_lines_with_stamps_sorted_by_time() -> None:
    text = "[ar:Someone]\n[ti:A Song]\n[00:12.50]second\n[00:01.00]first\n[01:02.345]third\n"
    lyrics = parse_lrc(text)
    assert lyrics is not None and lyrics.synced
    assert lyrics.lines == (Line(1000, "first"), Line(12500, "second"), Line(62345, "third"))
    assert lyrics.metadata == {"ar": "Someone", "ti": "A Song"}


def test_a_line_with_several_stamps_comes_once_per_stamp() -> None:
    lyrics = parse_lrc("[00:01.00][00:30.00]chorus\n[00:10.00]verse")
    assert lyrics is not None
    assert lyrics.lines == (Line(1000, "chorus"), Line(10000, "verse"), Line(30000, "chorus"))


def test_fractions_of_one_two_or_three_digits_and_colon_separator() -> None:
    lyrics = parse_lrc("[00:01.5]a\n[00:02.05]b\n[00:03.005]c\n[00:04]d\n[00:05:20]e")
    assert lyrics is not None
    assert [line.start_ms for line in lyrics.lines] == [1500, 2050, 3005, 4000, 5200]


def test_offset_moves_lines_earlier_never_before_zero() -> None:
    lyrics = parse_lrc("[offset:+500]\n[00:00.20]a\n[00:02.00]b")
    assert lyrics is not None
    assert [line.start_ms for line in lyrics.lines] == [0, 1500]
    later = parse_lrc("[offset:-250]\n[00:01.00]a")
    assert later is not None and later.lines[0].start_ms == 1250
    junk = parse_lrc("[offset:soon]\n[00:01.00]a")
    assert junk is not None and junk.lines[0].start_ms == 1000 and "offset" not in junk.metadata


def test_an_empty_stamped_line_is_kept_as_a_pause() -> None:
    lyrics = parse_lrc("[00:01.00]sing\n[00:05.00]\n")
    assert lyrics is not None and lyrics.lines[-1] == Line(5000, "")


def test_text_without_stamps_is_plain_lyrics() -> None:
    lyrics = parse_lrc("\ufeff\nFirst line\n\nSecond [not a stamp]\n\n")
    assert lyrics is not None and not lyrics.synced
    assert lyrics.lines == (Line(None, "First line"), Line(None, ""), Line(None, "Second [not a stamp]"))


def test_no_text_is_no_lyrics() -> None:
    assert parse_lrc("") is None
    assert parse_lrc("  \n\n") is None
    assert parse_lrc("[ar:Only tags]\n[ti:x]") is None


def test_synced_wins_then_the_first_given() -> None:
    plain_sidecar = Lyrics(False, (Line(None, "a"),), "sidecar")
    synced_embedded = Lyrics(True, (Line(0, "a"),), "embedded")
    synced_sidecar = Lyrics(True, (Line(0, "b"),), "sidecar")
    plain_embedded = Lyrics(False, (Line(None, "b"),), "embedded")
    assert choose_lyrics([plain_sidecar, synced_embedded]) is synced_embedded
    assert choose_lyrics([synced_sidecar, synced_embedded]) is synced_sidecar
    assert choose_lyrics([plain_sidecar, plain_embedded]) is plain_sidecar
    assert choose_lyrics([]) is None


# --- the resize (bytes in, bytes out) ----------------------------------------------------------


def _image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_render_fits_the_box_and_never_enlarges() -> None:
    source = picture_bytes(900, 300, (10, 200, 10), "JPEG")
    assert _image(render(source, 256, "jpeg")).size == (256, 85)
    assert _image(render(source, 1200, "webp")).size == (900, 300)
    assert _image(render(source, 1200, "webp")).format == "WEBP"


def test_render_flattens_transparency_onto_white_for_jpeg() -> None:
    out = io.BytesIO()
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)).save(out, "PNG")
    jpeg = _image(render(out.getvalue(), 64, "jpeg"))
    assert jpeg.mode == "RGB" and min(jpeg.getpixel((20, 20))) > 240  # type: ignore[arg-type]
    assert _image(render(out.getvalue(), 64, "webp")).mode == "RGBA"


@pytest.mark.parametrize("data", [b"", b"not a picture", b"\xff\xd8\xff\xe0" + b"\x00" * 100,
                                  picture_bytes(300, 300, (1, 2, 3), "JPEG")[:400]])
def test_render_refuses_what_does_not_decode(data: bytes) -> None:
    with pytest.raises(ArtError):
        render(data, 64, "jpeg")


def test_render_refuses_too_many_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(art, "MAX_DECODED_PIXELS", 100)
    with pytest.raises(ArtError, match="too large"):
        render(picture_bytes(20, 20, (1, 2, 3)), 64, "jpeg")
