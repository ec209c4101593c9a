// The album grid (#/albums?sort=…), also the albums of a genre (#/genre/<name>): covers, paged.
import { api } from "../api.js";
import { button, emptyState, node } from "../dom.js";
import { albumCard, failed, loading } from "./common.js";

const SORTS = [["alphabetical", "A–Z"], ["artist", "Artist"], ["newest", "Recently added"],
  ["recently_played", "Recently played"], ["frequent", "Most played"], ["year", "Year"], ["random", "Random"]];
const PAGE = 60;

export function albumsView(view, { query, isCurrent }, { genre = null } = {}) {
  const sort = SORTS.some(([s]) => s === query.get("sort")) ? query.get("sort") : "alphabetical";
  const head = node("div", "view-head");
  head.append(node("h1", "", genre ? genre : "Albums"));
  const select = node("select", "sort");
  select.setAttribute("aria-label", "Sort albums");
  for (const [value, label] of SORTS) {
    const option = node("option", "", label);
    option.value = value;
    option.selected = value === sort;
    select.append(option);
  }
  select.addEventListener("change", () => {
    const base = genre ? `#/genre/${encodeURIComponent(genre)}` : "#/albums";
    location.hash = `${base}?sort=${select.value}`;
  });
  head.append(select);
  const grid = node("ul", "album-grid");
  const status = loading();
  const more = button("Load more", "ghost wide", () => page(cursor));
  more.hidden = true;
  view.replaceChildren(head, grid, status, more);

  let cursor = null;
  async function page(after) {
    const params = new URLSearchParams({ sort, limit: String(PAGE) });
    if (genre) params.set("genre", genre);
    if (after) params.set("cursor", after);
    more.disabled = true;
    let body;
    try {
      body = await api("GET", `/albums?${params}`);
    } catch (err) {
      if (isCurrent()) status.replaceWith(failed(err));
      return;
    } finally {
      more.disabled = false;
    }
    if (!isCurrent()) return;
    grid.append(...body.albums.map(albumCard));
    cursor = body.next_cursor;
    more.hidden = !cursor;
    const none = genre ? "No albums in this genre."
      : sort === "recently_played" || sort === "frequent" ? "Nothing played yet."
        : "No albums yet. Music files with album tags show up here after a scan.";
    status.replaceWith(grid.children.length ? node("span") : emptyState(none));
  }
  page(null);
}
