// Lyrics of the item in the player (GET /items/{id}/lyrics): synced lines follow the playhead (the
// current one highlighted and kept in view; a click seeks to it), plain ones are shown as text.
// Asked for only while the lyrics panel is open: whether a track has lyrics is known only by asking,
// and most have none (each 404 would be a failed request in the console).
import { ApiError, api } from "./api.js";
import { $, node } from "./dom.js";
import * as player from "./player.js";

const list = $("lyrics-lines");
const tab = $("tab-lyrics");
let lines = []; // [{start_ms, text, element}] when synced
let shownFor = null;
let generation = 0;
player.diagnostics.lyrics = null;

const sheet = $("sheet");
const isOpen = () => !sheet.hidden && sheet.dataset.open === "lyrics";

async function show(item) {
  const mine = ++generation;
  lines = [];
  currentLine = -1;
  shownFor = item ? item.id : null;
  player.diagnostics.lyrics = null;
  list.replaceChildren();
  if (!item) return;
  list.append(node("li", "muted lyrics-note", "Looking for lyrics…"));
  let body;
  try {
    body = await api("GET", `/items/${item.id}/lyrics`);
  } catch (err) {
    if (mine !== generation) return;
    const none = err instanceof ApiError && err.status === 404;
    list.replaceChildren(node("li", "muted lyrics-note", none ? "No lyrics for this track." : `Lyrics: ${err.message}`));
    return;
  }
  if (mine !== generation) return;
  list.classList.toggle("synced", body.synced);
  list.replaceChildren(...body.lines.map((line, index) => {
    const li = node("li", "lyrics-line", line.text || "♪");
    li.dataset.index = String(index);
    if (body.synced) {
      li.addEventListener("click", () => { player.audio.currentTime = line.start_ms / 1000; });
      lines.push({ start_ms: line.start_ms, element: li });
    }
    return li;
  }));
  player.diagnostics.lyrics = { item: item.id, synced: body.synced, lines: body.lines.length, current: null };
  follow();
}

// The last line that has started (lines are in time order), or -1 before the first.
export function lineAt(ms, starts) {
  let lo = 0;
  let hi = starts.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (starts[mid].start_ms <= ms) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}

let currentLine = -1;
function follow() {
  if (!lines.length || player.currentItem()?.id !== shownFor) return;
  const index = lineAt(player.audio.currentTime * 1000, lines);
  if (index === currentLine && lines[index]?.element.classList.contains("current")) return;
  if (currentLine >= 0 && lines[currentLine]) {
    lines[currentLine].element.classList.remove("current");
    lines[currentLine].element.removeAttribute("aria-current");
  }
  currentLine = index;
  player.diagnostics.lyrics.current = index;
  if (index < 0) return;
  const element = lines[index].element;
  element.classList.add("current");
  element.setAttribute("aria-current", "true");
  if (!list.closest("[hidden]")) element.scrollIntoView({ block: "center", behavior: "smooth" });
}

function refresh() {
  const item = player.currentItem();
  tab.hidden = !item || item.type !== "track";
  if (!isOpen()) return;
  if ((item ? item.id : null) !== shownFor) show(item);
}

player.events.addEventListener("change", refresh);
document.addEventListener("revenge:sheet", refresh);
for (const type of ["timeupdate", "seeked", "playing"]) player.audio.addEventListener(type, follow);
