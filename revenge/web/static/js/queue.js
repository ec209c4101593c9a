// The play queue, kept on the server (/api/v1/queue) and shared by the user's devices: play an album
// (PUT), add to it (PATCH append / insert_next), next and previous (POST), the panel that lists it.
// When an entry ends the next one starts at once, and its first segment was fetched ahead of the end
// (prefetch), so the server has encoded it and the switch waits for no transcode.
import { API, ApiError, api, authHeaders, deviceId } from "./api.js";
import { $, button, formatTime, node, showError, subtitle } from "./dom.js";
import * as player from "./player.js";

const PREFETCH_WALL_SECONDS = 15; // before the end, in wall time (the rate counts)
const MAX_RETRIES = 2;

let queue = null; // the server's last answer
const known = new Map(); // item id → item JSON: titles for the panel, what play() needs
let prefetchedFor = null; // the item whose successor was prefetched
const diagnostics = player.diagnostics;
diagnostics.queue = null;
diagnostics.prefetched = []; // {item, urls, before, left}: what was fetched ahead, seconds before the end

export const events = new EventTarget();

export function remember(items) {
  for (const item of items) if (item && item.id) known.set(item.id, item);
}

async function itemFor(id) {
  if (!known.has(id)) known.set(id, await api("GET", `/items/${id}`));
  return known.get(id);
}

function adopt(next) {
  queue = next;
  diagnostics.queue = next ? { version: next.version, items: next.items, current_index: next.current_index }
    : null;
  events.dispatchEvent(new CustomEvent("change", { detail: next }));
  render();
  return next;
}

// The queue as another device changed it (a live event): shown as it is, no request.
export function adoptRemote(q) {
  if (!queue || q.version > queue.version) adopt(q);
}

// Play the queue's current entry here, from where it was left.
export function resume() {
  return queue ? playCurrent(queue).catch(showError) : Promise.resolve(false);
}

export async function load() {
  const q = await api("GET", "/queue");
  // A live event may have brought a newer version while the answer was on its way.
  return queue && q.version < queue.version ? queue : adopt(q);
}

// One change based on the version this page has seen: a 409 carries the current queue, and the change
// is sent again on top of it (each of ours means "from what is there now").
async function change(method, path, body) {
  if (!queue) await load();
  for (let attempt = 0; ; attempt++) {
    try {
      return adopt(await api(method, path, { ...body, version: queue.version, device_id: deviceId() }));
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && err.body && err.body.queue && attempt < MAX_RETRIES) {
        adopt(err.body.queue);
        continue;
      }
      throw err;
    }
  }
}

// The entry after the current one, as the server's ``next`` will choose it.
function predictedNext(q) {
  if (!q || !q.items.length) return null;
  if (q.repeat === "one" && q.current_index !== null) return q.items[q.current_index];
  const following = q.current_index === null ? 0 : q.current_index + 1;
  if (following < q.items.length) return q.items[following];
  return q.repeat === "all" ? q.items[0] : null;
}

async function playCurrent(q) {
  if (!q.current_item_id) return false;
  return player.play(await itemFor(q.current_item_id), { startSeconds: q.position_seconds || 0 });
}

export async function playList(items, index = 0) {
  remember(items);
  const ids = items.map((i) => i.id);
  const started = player.play(items[index], { startSeconds: 0 }); // not waiting for the queue write
  try {
    await change("PUT", "/queue", { items: ids, current_index: index, position_seconds: 0 });
  } catch (err) {
    showError(err);
  }
  return started;
}

export async function add(items, { next = false } = {}) {
  remember(items);
  try {
    await change("PATCH", "/queue", { ops: [{ op: next ? "insert_next" : "append", items: items.map((i) => i.id) }] });
    flash(next ? "Playing next" : `Added ${items.length === 1 ? items[0].title : `${items.length} tracks`}`);
  } catch (err) {
    showError(err);
  }
}

export async function step(direction) {
  try {
    const q = await change("POST", `/queue/${direction}`, {});
    if (q.current_item_id) await playCurrent(q);
    else await player.stopPlayback("stopped");
  } catch (err) {
    showError(err);
  }
}

async function jump(index) {
  try {
    const q = await change("PATCH", "/queue", { ops: [{ op: "set_current", index, position_seconds: 0 }] });
    await playCurrent(q);
  } catch (err) {
    showError(err);
  }
}

async function removeAt(index) {
  try {
    await change("PATCH", "/queue", { ops: [{ op: "remove", index }] });
  } catch (err) {
    showError(err);
  }
}

async function setRepeat(mode) {
  try {
    await change("PATCH", "/queue", { ops: [{ op: "repeat", mode }] });
  } catch (err) {
    showError(err);
  }
}

// An entry ended: the next one starts now (the item the server's ``next`` will pick), while the queue
// moves on the server; should another device have changed it meanwhile, its answer wins.
player.events.addEventListener("ended", async ({ detail: item }) => {
  if (!queue || queue.current_item_id !== item.id) return;
  const predicted = predictedNext(queue);
  const starting = predicted ? itemFor(predicted).then((next) => player.play(next, { startSeconds: 0 })) : null;
  try {
    const q = await change("POST", "/queue/next", {});
    await starting;
    if (q.current_item_id && q.current_item_id !== predicted) await playCurrent(q);
  } catch (err) {
    showError(err);
  }
});

// Ahead of the end: the next entry's playlist and first segment (HLS, with the profiles of the current
// session), or the first bytes of its file (direct play).
player.audio.addEventListener("timeupdate", () => {
  const item = player.currentItem();
  const session = player.currentSession();
  const audio = player.audio;
  if (!item || !session || !queue || queue.current_item_id !== item.id || prefetchedFor === item.id) return;
  if (!Number.isFinite(audio.duration)) return;
  const left = (audio.duration - audio.currentTime) / (audio.playbackRate || 1);
  if (left > PREFETCH_WALL_SECONDS) return;
  const next = predictedNext(queue);
  if (!next || next === item.id) return;
  prefetchedFor = item.id;
  prefetch(next, item, session, audio.duration - audio.currentTime).catch((err) => console.warn("revenge: prefetch", err));
});

async function prefetch(itemId, playing, session, before) {
  const get = async (url, headers = {}) => {
    const response = await fetch(url, { headers: { ...authHeaders(), ...headers } });
    if (!response.ok) throw new Error(`${response.status} for ${url}`);
    return response;
  };
  const urls = [];
  if (session.decision === "hls") {
    const master = new URL(`${API}/stream/${itemId}/playlist.m3u8?profiles=${session.profiles.join(",")}`,
      location.origin);
    const variant = new URL(firstUri(await (await get(master)).text()), master);
    const media = await (await get(variant)).text();
    const init = media.match(/#EXT-X-MAP:URI="([^"]+)"/);
    if (init) urls.push(new URL(init[1], variant).toString());
    urls.push(new URL(firstUri(media), variant).toString());
    await Promise.all(urls.map((url) => get(url).then((r) => r.arrayBuffer())));
  } else {
    const url = `${API}/stream/${itemId}/direct`;
    urls.push(url);
    await (await get(url, { Range: "bytes=0-262143" })).arrayBuffer();
  }
  // Seconds of the current entry left when it was all here (negative: it had ended already).
  const audio = player.audio;
  const left = player.currentItem() === playing ? audio.duration - audio.currentTime : -1;
  diagnostics.prefetched.push({ item: itemId, urls, before, left });
}

function firstUri(playlist) {
  const line = playlist.split("\n").map((l) => l.trim()).find((l) => l && !l.startsWith("#"));
  if (!line) throw new Error("a playlist without entries");
  return line;
}

// ---- continue the queue here (home): its current entry, where it was left --------------------------

async function offerResume() {
  const q = queue;
  const shelf = $("queue-resume");
  if (!q || !q.current_item_id || player.currentItem()) {
    shelf.hidden = true;
    return;
  }
  let item;
  try {
    item = await itemFor(q.current_item_id);
  } catch {
    shelf.hidden = true;
    return;
  }
  if (q !== queue || player.currentItem()) return;
  const at = q.position_seconds ? ` · from ${formatTime(q.position_seconds)}` : "";
  $("queue-resume-title").textContent = `▶ ${item.title}`;
  $("queue-resume-sub").textContent = `${subtitle(item)}${at} · ${q.current_index + 1} of ${q.items.length}`;
  shelf.hidden = false;
}

$("queue-resume-play").addEventListener("click", () => {
  $("queue-resume").hidden = true;
  resume();
});
events.addEventListener("change", offerResume);
player.events.addEventListener("change", offerResume);

// ---- the panel ------------------------------------------------------------------------------------

const panel = $("queue-list");
const repeatButton = $("queue-repeat");

async function render() {
  if (!panel) return;
  const q = queue;
  $("now-prev").disabled = $("now-next").disabled = !(q && q.items.length);
  if (!q || !q.items.length) {
    panel.replaceChildren(node("li", "muted empty", "The queue is empty. Play an album, or add tracks with +."));
    repeatButton.textContent = "Repeat: off";
    return;
  }
  repeatButton.textContent = `Repeat: ${q.repeat}`;
  const shown = q.items.slice(0, 200);
  const missing = [...new Set(shown.filter((id) => !known.has(id)))];
  await Promise.all(missing.slice(0, 50).map((id) => itemFor(id).catch(() => null)));
  if (q !== queue) return; // a newer answer is being drawn
  panel.replaceChildren(...shown.map((id, index) => {
    const item = known.get(id);
    const li = node("li", "queue-entry");
    li.dataset.itemId = id;
    if (index === q.current_index) {
      li.classList.add("current");
      li.setAttribute("aria-current", "true");
    }
    const main = button("", "queue-main", () => jump(index), `Play ${item ? item.title : id}`);
    main.append(node("span", "queue-title", item ? item.title : id),
      node("span", "queue-sub", item ? `${subtitle(item)} · ${formatTime(item.duration_ms / 1000)}` : ""));
    li.append(main, button("✕", "ghost small queue-remove", () => removeAt(index), "Remove from the queue"));
    return li;
  }));
  if (q.items.length > shown.length) panel.append(node("li", "muted", `… and ${q.items.length - shown.length} more`));
}

let flashTimer = null;
function flash(text) {
  const status = $("toast");
  status.textContent = text;
  status.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { status.hidden = true; }, 2500);
}

player.events.addEventListener("change", () => render());
$("now-prev").addEventListener("click", () => step("previous"));
$("now-next").addEventListener("click", () => step("next"));
repeatButton.addEventListener("click", () => {
  const modes = ["off", "all", "one"];
  setRepeat(modes[(modes.indexOf(queue ? queue.repeat : "off") + 1) % modes.length]);
});
$("queue-clear").addEventListener("click", async () => {
  try {
    await change("PATCH", "/queue", { ops: [{ op: "clear" }] });
  } catch (err) {
    showError(err);
  }
});
