// Revenge web player: plain ES modules, no framework and no build step (js/; README "Architecture").
// This entry signs in and out, routes the views, and wires the keyboard.
import { api, currentKey, onUnauthorized, setKey } from "./js/api.js";
import { $, clearError, showError } from "./js/dom.js";
import { startEvents, stopEvents } from "./js/events.js";
import * as player from "./js/player.js";
import * as queue from "./js/queue.js";
import "./js/lyrics.js";
import "./js/chapters.js";
import { otherwise, route, start } from "./js/router.js";
import { albumView } from "./js/views/album.js";
import { albumsView } from "./js/views/albums.js";
import { artistView, artistsView } from "./js/views/artist.js";
import { genresView } from "./js/views/genres.js";
import { refreshHome } from "./js/views/home.js";

const ui = {
  login: $("login"), loginForm: $("login-form"), loginKey: $("login-key"), library: $("library"),
  view: $("view"), logout: $("logout"), searchForm: $("search-form"), tabs: $("tabs"), errorClose: $("error-close"),
};

function showLogin() {
  ui.login.hidden = false;
  ui.library.hidden = true;
  ui.view.hidden = true;
  ui.searchForm.hidden = true;
  ui.tabs.hidden = true;
  ui.logout.hidden = true;
  ui.loginKey.focus();
}

function signedIn() {
  ui.login.hidden = true;
  ui.searchForm.hidden = false;
  ui.tabs.hidden = false;
  ui.logout.hidden = false;
}

function signOut(reason) {
  setKey(null);
  stopEvents();
  player.forget();
  showLogin();
  if (reason) showError(reason);
}
onUnauthorized(signOut);

ui.loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = ui.loginKey.value.trim();
  if (!key) return;
  clearError();
  try {
    await api("GET", "/items?limit=1", undefined, { key });
  } catch (err) {
    showError(err);
    return;
  }
  setKey(key);
  ui.loginKey.value = "";
  begin();
});

ui.logout.addEventListener("click", async () => {
  await player.stopPlayback("stopped");
  signOut(null);
});
ui.errorClose.addEventListener("click", clearError);

// ---- views ---------------------------------------------------------------------------------------

const inView = (render) => (match) => render(ui.view, match);
route("albums", inView(albumsView));
route("album/:id", inView(albumView));
route("artists", inView(artistsView));
route("artist/:id", inView(artistView));
route("genres", inView(genresView));
route("genre/:name", inView((view, match) => albumsView(view, match, { genre: match.params.name })));
const home = () => refreshHome();
otherwise(home);

function onRoute(match) {
  const isHome = match.render === home;
  ui.library.hidden = !isHome;
  ui.view.hidden = isHome;
  const section = match.path.split("/").filter(Boolean)[0] || "";
  const tab = { album: "albums", artist: "artists", genre: "genres" }[section] || section;
  for (const a of ui.tabs.querySelectorAll("a")) {
    const on = a.dataset.tab === (tab || "home");
    a.classList.toggle("on", on);
    if (on) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!isHome) window.scrollTo(0, 0);
}

let started = false;
function begin() {
  signedIn();
  queue.load().catch(showError);
  startEvents();
  if (started) {
    window.dispatchEvent(new HashChangeEvent("hashchange"));
  } else {
    started = true;
    start(onRoute);
  }
}

// ---- the player's sheet (queue, lyrics, chapters) and the keyboard ------------------------------

const sheet = $("sheet");
for (const tab of document.querySelectorAll("[data-sheet]")) {
  tab.addEventListener("click", () => {
    const name = tab.dataset.sheet;
    const open = sheet.hidden || sheet.dataset.open !== name;
    sheet.hidden = !open;
    sheet.dataset.open = open ? name : "";
    for (const panel of sheet.querySelectorAll(".sheet-panel")) panel.hidden = panel.dataset.panel !== name;
    for (const t of document.querySelectorAll("[data-sheet]")) t.setAttribute("aria-expanded", String(open && t === tab));
    document.dispatchEvent(new CustomEvent("revenge:sheet", { detail: open ? name : null }));
  });
}

// Space plays and pauses (not while typing, and not on a focused control, where it means "press").
document.addEventListener("keydown", (event) => {
  if (event.key !== " " || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.closest && target.closest("input, select, textarea, button, a, audio, [contenteditable]")) return;
  if (!player.currentItem()) return;
  event.preventDefault();
  player.togglePause();
});

if (currentKey()) begin();
else showLogin();
