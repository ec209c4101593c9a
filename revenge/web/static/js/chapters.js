// Chapters of the book (or episode) in the player: the list, the current one marked as the playhead
// moves, a click seeks to it. They come with the item's detail (GET /items/{id}).
import { api } from "./api.js";
import { $, button, formatTime, node } from "./dom.js";
import * as player from "./player.js";

const list = $("chapter-list");
const tab = $("tab-chapters");
let chapters = [];
let shownFor = null;
let generation = 0;

async function show(item) {
  const mine = ++generation;
  chapters = [];
  shownFor = item ? item.id : null;
  list.replaceChildren();
  tab.hidden = true;
  if (!item || !item.chapter_count) return;
  let detail;
  try {
    detail = await api("GET", `/items/${item.id}`);
  } catch (err) {
    console.warn("revenge: chapters", err.message);
    return;
  }
  if (mine !== generation || !detail.chapters || !detail.chapters.length) return;
  tab.hidden = false;
  chapters = detail.chapters.map((chapter) => {
    const li = node("li", "chapter");
    const go = button("", "chapter-main", () => { player.audio.currentTime = chapter.start_ms / 1000; },
      `Go to ${chapter.title}`);
    go.append(node("span", "chapter-title", chapter.title),
      node("span", "chapter-time muted", formatTime(chapter.start_ms / 1000)));
    li.append(go);
    return { ...chapter, element: li };
  });
  list.replaceChildren(...chapters.map((c) => c.element));
  follow();
}

function follow() {
  if (!chapters.length || player.currentItem()?.id !== shownFor) return;
  const ms = player.audio.currentTime * 1000;
  for (const chapter of chapters) {
    const on = chapter.start_ms <= ms && ms < chapter.end_ms;
    chapter.element.classList.toggle("current", on);
    if (on) chapter.element.setAttribute("aria-current", "true");
    else chapter.element.removeAttribute("aria-current");
  }
}

player.events.addEventListener("change", ({ detail: item }) => {
  if ((item ? item.id : null) !== shownFor) show(item);
});
for (const type of ["timeupdate", "seeked"]) player.audio.addEventListener(type, follow);
