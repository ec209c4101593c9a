// Pieces several views show: album cards, track rows, a loading and an error state.
import { cover } from "../art.js";
import { button, emptyState, formatTime, link, node } from "../dom.js";
import * as queue from "../queue.js";
import * as player from "../player.js";
import { albumHref, artistHref } from "../router.js";

export function albumCard(album) {
  const li = node("li", "album-card");
  li.dataset.albumId = album.id;
  const a = link(albumHref(album.id), "album-link");
  a.title = `${album.name} — ${album.artist}`;
  const year = album.year ? ` · ${album.year}` : "";
  a.append(cover(album.art_id, 180, album.name), node("span", "album-name", album.name),
    node("span", "album-artist muted", `${album.artist}${year}`));
  li.append(a);
  return li;
}

export function albumGrid(albums) {
  const ul = node("ul", "album-grid");
  ul.append(...albums.map(albumCard));
  return ul;
}

// The artists of a track as links, "A, B".
export function artistLinks(track) {
  const span = node("span", "track-artists muted");
  const refs = track.artists && track.artists.length ? track.artists : null;
  if (!refs) {
    span.textContent = track.artist || "";
    return span;
  }
  refs.forEach((ref, i) => {
    if (i) span.append(", ");
    span.append(link(artistHref(ref.id), "", ref.name));
  });
  return span;
}

// One track: play (the list it is in, from it), title, artists, time, play next, add to the queue.
export function trackRow(track, list, index, { number = null, showAlbum = false } = {}) {
  const li = node("li", "track");
  li.dataset.itemId = track.id;
  const playButton = button(number !== null ? String(number) : "▶", "track-play", () => queue.playList(list, index),
    `Play ${track.title}`);
  const main = node("span", "track-main");
  main.append(node("span", "track-title", track.title), artistLinks(track));
  if (showAlbum && track.album && track.album_id) {
    main.querySelector(".track-artists").append(" · ", link(albumHref(track.album_id), "", track.album));
  }
  li.append(playButton, main, node("span", "track-time muted", formatTime(track.duration_ms / 1000)),
    button("⤵", "ghost small track-next", () => queue.add([track], { next: true }), `Play ${track.title} next`),
    button("+", "ghost small track-add", () => queue.add([track]), `Add ${track.title} to the queue`));
  if (player.currentItem()?.id === track.id) li.classList.add("playing");
  return li;
}

export function loading() {
  return emptyState("Loading…", "loading");
}

export function failed(err) {
  const text = err && err.describe ? err.describe() : String(err && err.message ? err.message : err);
  return emptyState(`Could not load this: ${text}`, "failed");
}

// Marks the rows of the item in the player wherever they are shown.
player.events.addEventListener("change", ({ detail: item }) => {
  for (const row of document.querySelectorAll(".track")) {
    row.classList.toggle("playing", Boolean(item) && row.dataset.itemId === item.id);
  }
});
