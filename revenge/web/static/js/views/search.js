// Music search grouped by kind (GET /search): artists, albums, tracks, each best match first. Shown
// above the item list on the home view while there is a query.
import { api } from "../api.js";
import { link, node } from "../dom.js";
import { artistHref } from "../router.js";
import { albumGrid, failed, trackRow } from "./common.js";
import * as queue from "../queue.js";

let generation = 0;

export async function showGroups(container, q) {
  const mine = ++generation;
  if (!q) {
    container.replaceChildren();
    container.hidden = true;
    return;
  }
  let body;
  try {
    body = await api("GET", `/search?${new URLSearchParams({ q, limit: "12" })}`);
  } catch (err) {
    if (mine === generation) container.replaceChildren(failed(err));
    return;
  }
  if (mine !== generation) return;
  queue.remember(body.tracks);
  const groups = [];
  if (body.artists.length) {
    const ul = node("ul", "chips");
    for (const artist of body.artists) {
      const li = node("li");
      li.append(link(artistHref(artist.id), "chip", artist.name));
      ul.append(li);
    }
    groups.push(group("artists", "Artists", ul));
  }
  if (body.albums.length) groups.push(group("albums", "Albums", albumGrid(body.albums)));
  if (body.tracks.length) {
    const ol = node("ol", "tracks");
    ol.append(...body.tracks.map((t, i) => trackRow(t, body.tracks, i, { showAlbum: true })));
    groups.push(group("tracks", "Tracks", ol));
  }
  container.replaceChildren(...groups);
  container.hidden = groups.length === 0;
}

function group(kind, title, content) {
  const section = node("section", `search-group search-${kind}`);
  section.dataset.kind = kind;
  section.append(node("h2", "", title), content);
  return section;
}
