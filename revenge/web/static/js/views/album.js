// One album (#/album/<id>): cover, artists, year, total time, discs with their tracks in order,
// play (the whole album through the queue) and add to the queue.
import { api } from "../api.js";
import { cover } from "../art.js";
import { button, formatLength, link, node } from "../dom.js";
import * as queue from "../queue.js";
import { artistHref, genreHref } from "../router.js";
import { failed, loading, trackRow } from "./common.js";

export async function albumView(view, { params, isCurrent }) {
  view.replaceChildren(loading());
  let album;
  try {
    album = await api("GET", `/albums/${encodeURIComponent(params.id)}`);
  } catch (err) {
    if (isCurrent()) view.replaceChildren(failed(err));
    return;
  }
  if (!isCurrent()) return;
  const tracks = album.discs.flatMap((d) => d.tracks);
  queue.remember(tracks);

  const head = node("header", "album-head");
  const text = node("div", "album-head-text");
  const artists = node("p", "album-head-artists");
  if (album.artists.length) {
    album.artists.forEach((ref, i) => {
      if (i) artists.append(", ");
      artists.append(link(artistHref(ref.id), "", ref.name));
    });
  } else {
    artists.textContent = album.artist;
  }
  const facts = [album.year, `${album.track_count} track${album.track_count === 1 ? "" : "s"}`,
    formatLength(album.duration_ms)].filter(Boolean);
  const meta = node("p", "album-head-meta muted", facts.join(" · "));
  meta.id = "album-meta";
  const genres = node("p", "album-head-genres");
  for (const genre of album.genres) genres.append(link(genreHref(genre.name), "chip", genre.name));
  const actions = node("div", "album-actions");
  actions.append(button("▶ Play", "", () => queue.playList(tracks, 0), `Play ${album.name}`),
    button("+ Queue", "ghost", () => queue.add(tracks), `Add ${album.name} to the queue`));
  actions.firstChild.id = "album-play";
  text.append(node("h1", "", album.name), artists, meta, genres, actions);
  head.append(cover(album.art_id, 240, album.name, "cover cover-large"), text);

  const body = node("div", "discs");
  let index = 0;
  for (const disc of album.discs) {
    const section = node("section", "disc");
    section.dataset.disc = String(disc.number);
    if (album.discs.length > 1 || disc.subtitle) {
      section.append(node("h2", "disc-title", `Disc ${disc.number}${disc.subtitle ? ` — ${disc.subtitle}` : ""}`));
    }
    const list = node("ol", "tracks");
    for (const track of disc.tracks) {
      list.append(trackRow(track, tracks, index, { number: track.track_number ?? index + 1 }));
      index += 1;
    }
    section.append(list);
    body.append(section);
  }
  view.replaceChildren(head, body);
}
