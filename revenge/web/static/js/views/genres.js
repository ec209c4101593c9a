// Genres (#/genres) with their album and track counts; each opens its albums (#/genre/<name>).
import { api } from "../api.js";
import { button, emptyState, link, node } from "../dom.js";
import { genreHref } from "../router.js";
import { failed, loading } from "./common.js";

export function genresView(view, { isCurrent }) {
  const list = node("ul", "name-list genre-list");
  const status = loading();
  const more = button("Load more", "ghost wide", () => page(cursor));
  more.hidden = true;
  view.replaceChildren(node("h1", "", "Genres"), list, status, more);
  let cursor = null;
  async function page(after) {
    let body;
    try {
      body = await api("GET", `/genres?limit=200${after ? `&cursor=${encodeURIComponent(after)}` : ""}`);
    } catch (err) {
      if (isCurrent()) status.replaceWith(failed(err));
      return;
    }
    if (!isCurrent()) return;
    for (const genre of body.genres) {
      const li = node("li");
      const a = link(genreHref(genre.name), "name-link");
      a.append(node("span", "name", genre.name), node("span", "muted count",
        `${genre.album_count} album${genre.album_count === 1 ? "" : "s"} · ${genre.track_count} tracks`));
      li.append(a);
      list.append(li);
    }
    cursor = body.next_cursor;
    more.hidden = !cursor;
    status.replaceWith(list.children.length ? node("span") : emptyState("No genres yet: none of the files is tagged with one."));
  }
  page(null);
}
