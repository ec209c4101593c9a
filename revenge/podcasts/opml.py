"""OPML subscription lists in and out. Pure. Read with ``defusedxml`` (no entities, no external
references): an OPML file is uploaded by a user and must not expand into gigabytes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass

import defusedxml
import defusedxml.ElementTree

from revenge.podcasts.feeds import FeedError


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    feed_url: str
    title: str


def parse_opml(data: bytes) -> list[OpmlFeed]:
    """Every outline with an ``xmlUrl`` (nested folders included), each URL once, in document order."""
    try:
        root = defusedxml.ElementTree.fromstring(
            data, forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DefusedXmlException as exc:
        raise FeedError(f"the OPML declares XML entities ({type(exc).__name__}): refused") from None
    except ET.ParseError as exc:
        raise FeedError(f"not XML: {exc}") from None
    if root.tag.lower() != "opml":
        raise FeedError("not an OPML document")
    feeds: list[OpmlFeed] = []
    seen: set[str] = set()
    for outline in root.iter("outline"):
        url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
        if url and url not in seen:
            seen.add(url)
            feeds.append(OpmlFeed(url, (outline.get("title") or outline.get("text") or "").strip()))
    return feeds


def export_opml(feeds: Iterable[OpmlFeed], title: str = "Revenge podcasts") -> bytes:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    for feed in feeds:
        ET.SubElement(body, "outline", type="rss", text=feed.title, title=feed.title, xmlUrl=feed.feed_url)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
