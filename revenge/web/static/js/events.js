// Live events (GET /api/v1/events, Server-Sent Events): the queue as other devices change it, what
// they play ("Playing on <device>", with a button to continue here), and commands sent to this device.
// EventSource sends no headers, so each connection opens with a short-lived token (POST /events/token);
// the browser's own retry would reuse the expired token (403), so after a drop the page opens a new
// EventSource with a new token and the last event id it saw, and the server replays what it missed
// (or says resync: re-read everything).
import { api, deviceId } from "./api.js";
import { $, formatTime, showError } from "./dom.js";
import * as player from "./player.js";
import * as queue from "./queue.js";

const RECONNECT_MS = [250, 1000, 2000, 5000, 10000]; // backoff; reset by every "ready"
let source = null;
let lastEventId = null;
let attempt = 0;
let timer = null;
let running = false;
let remote = null; // {device_id, item_id, position_seconds, state}: another device with an item
const diagnostics = player.diagnostics;
diagnostics.events = { connected: false, connects: 0, received: [], lastEventId: null, commands: [] };

export function startEvents() {
  if (running) return;
  running = true;
  connect();
}

export function stopEvents() {
  running = false;
  clearTimeout(timer);
  if (source) source.close();
  source = null;
  lastEventId = null;
  diagnostics.events.connected = false;
  showRemote(null);
}

async function connect() {
  clearTimeout(timer);
  timer = null;
  if (!running || source) return;
  let url;
  try {
    const body = await api("POST", "/events/token", { device_id: deviceId() });
    url = new URL(body.url, location.origin);
  } catch {
    retryLater();
    return;
  }
  if (!running || source) return;
  if (lastEventId) url.searchParams.set("last_event_id", lastEventId);
  const es = new EventSource(url);
  source = es;
  const on = (type, handler) => es.addEventListener(type, (event) => {
    if (source !== es) return;
    if (event.lastEventId) lastEventId = diagnostics.events.lastEventId = event.lastEventId;
    let data = null;
    try {
      data = event.data ? JSON.parse(event.data) : null;
    } catch {
      data = null;
    }
    diagnostics.events.received.push(type);
    handler(data);
  });
  on("ready", (ready) => {
    attempt = 0;
    diagnostics.events.connected = true;
    diagnostics.events.connects += 1;
    if (!ready || !ready.resumed) refreshDevices(); // nothing replayed: what plays elsewhere now
  });
  on("queue", (q) => {
    if (q && q.items_included !== false) queue.adoptRemote(q);
    else queue.load().catch(() => {});
  });
  on("resync", () => {
    queue.load().catch(() => {});
    refreshDevices();
  });
  on("session", (s) => {
    if (!s || s.device_id === deviceId()) return;
    if (s.action === "started") {
      showRemote({ device_id: s.device_id, item_id: s.item_id, position_seconds: s.position_seconds,
        state: s.state });
    } else if (remote && remote.device_id === s.device_id) {
      showRemote(null);
    }
  });
  on("progress", (p) => {
    if (!p || !p.device_id || p.device_id === deviceId()) return;
    if (remote && remote.device_id !== p.device_id && remote.state === "playing") return;
    if (p.event === "stop") {
      if (remote && remote.device_id === p.device_id) showRemote(null);
      return;
    }
    showRemote({ device_id: p.device_id, item_id: p.item_id, position_seconds: p.position_seconds,
      state: p.event === "pause" || (p.event === "seek" && remote && remote.state === "paused") ? "paused"
        : "playing" });
  });
  on("command", obey);
  es.onerror = () => {
    if (source !== es) return;
    es.close();
    source = null;
    diagnostics.events.connected = false;
    retryLater();
  };
}

function retryLater() {
  if (!running || timer) return;
  const delay = RECONNECT_MS[Math.min(attempt, RECONNECT_MS.length - 1)];
  attempt += 1;
  timer = setTimeout(connect, delay);
}

// Back on the network: no need to wait for the backoff.
window.addEventListener("online", () => {
  if (!running || source) return;
  attempt = 0;
  connect();
});

async function obey(command) {
  if (!command) return;
  diagnostics.events.commands.push(command.command);
  const audio = player.audio;
  try {
    switch (command.command) {
      case "play":
        if (player.currentItem()) await audio.play();
        else await queue.resume();
        break;
      case "pause":
        audio.pause();
        break;
      case "next":
      case "previous":
        await queue.step(command.command);
        break;
      case "seek":
        if (player.currentItem()) audio.currentTime = command.position_seconds;
        break;
      case "volume":
        audio.volume = Math.min(1, Math.max(0, command.level));
        break;
      case "transfer": {
        showRemote(null);
        const item = await api("GET", `/items/${encodeURIComponent(command.item_id)}`);
        queue.remember([item]);
        await player.play(item, { startSeconds: command.position_seconds || 0 });
        break;
      }
      default:
        break;
    }
  } catch (err) {
    showError(err);
  }
}

// ---- "playing on <device>" ----------------------------------------------------------------------

async function refreshDevices() {
  try {
    const body = await api("GET", "/devices");
    const others = (body.devices || []).filter((d) => d.device_id !== deviceId() && d.item_id
      && d.state !== "stopped");
    const other = others.find((d) => d.state === "playing") || others[0];
    showRemote(other ? { device_id: other.device_id, item_id: other.item_id,
      position_seconds: other.position_seconds, state: other.state } : null);
  } catch {
    // the banner is a nicety: no error for it
  }
}

const titles = new Map(); // item id → title, for the banner

async function showRemote(next) {
  remote = next;
  const banner = $("remote");
  if (!next || player.currentItem()) {
    banner.hidden = true;
    return;
  }
  if (!titles.has(next.item_id)) {
    try {
      titles.set(next.item_id, (await api("GET", `/items/${encodeURIComponent(next.item_id)}`)).title);
    } catch {
      titles.set(next.item_id, next.item_id);
    }
  }
  if (remote !== next) return;
  const verb = next.state === "paused" ? "Paused" : "Playing";
  $("remote-text").textContent =
    `${verb} on ${next.device_id}: ${titles.get(next.item_id)} · ${formatTime(next.position_seconds || 0)}`;
  banner.hidden = false;
}

// Continue here: the other device is told to pause, this one to play its item from where it is.
$("remote-here").addEventListener("click", async () => {
  if (!remote) return;
  try {
    await api("POST", `/devices/${encodeURIComponent(remote.device_id)}/commands`,
      { command: "transfer", to_device: deviceId(), from_device: deviceId() });
  } catch (err) {
    showError(err);
  }
});

player.events.addEventListener("change", () => showRemote(remote));
