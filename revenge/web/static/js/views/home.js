// The home view (#/): continue listening, then every item (music, podcasts, books) with the search
// box's query and type; a music query also shows the grouped search above the list.
import { api } from "../api.js";
import { $, TYPE_LABELS, button, formatTime, node, showError, subtitle } from "../dom.js";
import * as player from "../player.js";
import { showGroups } from "./search.js";

const PAGE_SIZE = 50;
const SEARCH_DEBOUNCE_MS = 250;
const ui = {
  searchForm: $("search-form"), searchQ: $("search-q"), searchType: $("search-type"),
  continueShelf: $("continue"), continueList: $("continue-list"), groups: $("search-groups"),
  items: $("items"), itemsEmpty: $("items-empty"), more: $("more"), browseTitle: $("browse-title"),
};

let listCursor = null;
let listGeneration = 0; // a newer search wins over a slower older one

function listQuery(cursor) {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  const q = ui.searchQ.value.trim();
  if (q) query.set("q", q);
  if (ui.searchType.value) query.set("type", ui.searchType.value);
  if (cursor) query.set("cursor", cursor);
  return `/items?${query}`;
}

export async function loadItems(append) {
  const generation = ++listGeneration;
  const q = ui.searchQ.value.trim();
  if (!append) showGroups(ui.groups, ui.searchType.value === "" || ui.searchType.value === "track" ? q : "");
  let page;
  try {
    page = await api("GET", listQuery(append ? listCursor : null));
  } catch (err) {
    if (generation === listGeneration) showError(err);
    return;
  }
  if (generation !== listGeneration) return;
  if (!append) ui.items.replaceChildren();
  for (const item of page.items) ui.items.append(itemRow(item));
  markPlaying(player.currentItem());
  listCursor = page.next_cursor;
  ui.more.hidden = !listCursor;
  ui.itemsEmpty.hidden = ui.items.children.length > 0;
  ui.itemsEmpty.textContent = q ? `Nothing matches “${q}”.` : "Nothing here yet. Add folders to the library and scan.";
  ui.browseTitle.textContent = q ? `Results for “${q}”` : (TYPE_LABELS[ui.searchType.value] || "Library");
}

function markPlaying(item) {
  for (const row of ui.items.children) row.classList.toggle("playing", Boolean(item) && row.dataset.itemId === item.id);
}

function itemRow(item) {
  const li = node("li", "item");
  li.dataset.itemId = item.id;
  const main = node("button", "item-main");
  main.type = "button";
  main.title = `Play ${item.title}`;
  main.append(node("span", "item-title", item.title), node("span", "item-sub", subtitle(item)));
  main.addEventListener("click", () => player.play(item));
  const meta = node("span", "item-meta");
  meta.append(node("span", `badge badge-${item.type}`, TYPE_LABELS[item.type] || item.type),
    node("span", "item-duration", formatTime(item.duration_ms / 1000)));
  const playButton = button("▶", "play", () => player.play(item), `Play ${item.title}`);
  const played = button("Mark played", "ghost small played-toggle", () => player.togglePlayed(item, played));
  li.append(playButton, main, meta, played);
  return li;
}

export async function loadContinue() {
  let body;
  try {
    body = await api("GET", "/playback/continue?limit=12");
  } catch (err) {
    showError(err);
    return;
  }
  ui.continueList.replaceChildren(...body.items.map(continueCard));
  ui.continueShelf.hidden = body.items.length === 0;
}

function continueCard({ item, progress }) {
  const li = node("li", "card");
  li.dataset.itemId = item.id;
  const open = node("button", "card-main");
  open.type = "button";
  open.title = `Resume ${item.title} at ${formatTime(progress.position_seconds)}`;
  const bar = node("span", "bar");
  const fill = node("span", "bar-fill");
  fill.style.width = `${Math.min(100, Math.max(0, progress.percent))}%`;
  bar.append(fill);
  const left = Math.max(0, progress.duration_seconds - progress.position_seconds);
  open.append(node("span", "card-title", item.title), node("span", "card-sub", subtitle(item)), bar,
    node("span", "card-left", `${formatTime(left)} left`));
  open.addEventListener("click", () => player.play(item));
  const hide = button("✕", "ghost small card-hide", async () => {
    try {
      await api("POST", `/playback/progress/${item.id}/hidden`);
      await loadContinue();
    } catch (err) {
      showError(err);
    }
  }, "Remove from Continue listening");
  li.append(open, hide);
  return li;
}

export function refreshHome() {
  return Promise.all([loadContinue(), loadItems(false)]);
}

let searchTimer = null;
// Typing searches from any view: the results are on the home view.
function searchNow() {
  clearTimeout(searchTimer);
  if (location.hash && location.hash !== "#/" && location.hash !== "#") location.hash = "#/";
  loadItems(false);
}
ui.searchQ.addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(searchNow, SEARCH_DEBOUNCE_MS);
});
ui.searchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  searchNow();
});
ui.searchType.addEventListener("change", searchNow);
ui.more.addEventListener("click", () => loadItems(true));
player.events.addEventListener("change", ({ detail }) => markPlaying(detail));
player.events.addEventListener("progress", () => loadContinue());
player.events.addEventListener("finished", () => loadContinue());
