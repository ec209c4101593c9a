// Artists (#/artists, paged) and one artist (#/artist/<id>): their albums and the albums they appear on.
import { api } from "../api.js";
import { cover } from "../art.js";
import { button, emptyState, link, node } from "../dom.js";
import { artistHref } from "../router.js";
import { albumGrid, failed, loading } from "./common.js";

export async function artistView(view, { params, isCurrent }) {
  view.replaceChildren(loading());
  let artist;
  try {
    artist = await api("GET", `/artists/${encodeURIComponent(params.id)}`);
  } catch (err) {
    if (isCurrent()) view.replaceChildren(failed(err));
    return;
  }
  if (!isCurrent()) return;
  const head = node("header", "view-head");
  const count = `${artist.album_count} album${artist.album_count === 1 ? "" : "s"} · ${artist.track_count} track${
    artist.track_count === 1 ? "" : "s"}`;
  head.append(node("h1", "", artist.name), node("p", "muted", count));
  const parts = [head];
  const albums = node("section", "artist-albums");
  albums.append(node("h2", "", "Albums"),
    artist.albums.length ? albumGrid(artist.albums) : emptyState("No albums of their own."));
  parts.push(albums);
  if (artist.appears_on.length) {
    const appears = node("section", "artist-appears");
    appears.append(node("h2", "", "Appears on"), albumGrid(artist.appears_on));
    parts.push(appears);
  }
  view.replaceChildren(...parts);
}

export function artistsView(view, { isCurrent }) {
  const list = node("ul", "name-list");
  const status = loading();
  const more = button("Load more", "ghost wide", () => page(cursor));
  more.hidden = true;
  view.replaceChildren(node("h1", "", "Artists"), list, status, more);
  let cursor = null;
  async function page(after) {
    let body;
    try {
      body = await api("GET", `/artists?limit=200${after ? `&cursor=${encodeURIComponent(after)}` : ""}`);
    } catch (err) {
      if (isCurrent()) status.replaceWith(failed(err));
      return;
    }
    if (!isCurrent()) return;
    for (const artist of body.artists) {
      const li = node("li");
      const a = link(artistHref(artist.id), "name-link");
      a.append(cover(artist.art_id || null, 40, artist.name, "cover cover-round"), node("span", "name", artist.name),
        node("span", "muted count", `${artist.album_count} · ${artist.track_count}`));
      li.append(a);
      list.append(li);
    }
    cursor = body.next_cursor;
    more.hidden = !cursor;
    status.replaceWith(list.children.length ? node("span") : emptyState("No artists yet."));
  }
  page(null);
}
