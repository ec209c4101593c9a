// Playback of one item at a time: a playback session (direct file or HLS, as the server decides from
// what this browser declares it can play), hls.js or the browser's player, and progress reported
// through the session's heartbeats. What comes next is the queue's business (queue.js): this module
// says when an item ended ("ended" on ``events``) and plays what it is given.
import { api, ApiError, deviceId, isRetryable } from "./api.js";
import { capabilities, options } from "./caps.js";
import { cover } from "./art.js";
import { $, clearError, formatTime, showError, subtitle } from "./dom.js";

const REPORT_INTERVAL_MS = 10_000;
const RETRY_DELAYS_MS = [1000, 3000];
const MAX_PLAYBACK_RATE = 16; // what the server accepts (and Chromium's ceiling)
const RATE_STORE = "revenge.playbackRate";

// What tests and curious users can read (never written from outside).
export const diagnostics = {
  mode: null, // "direct" | "hls.js" | "native-hls"
  capabilities: null,
  session: null, // the last session the server started for this page
  startedAt: null, // media time at the first "playing" of the current item
  hlsErrors: [],
  bufferedAtEnd: null, // what the element held when "ended" fired: holes would show here
  reports: 0,
  lastReport: null,
  ended: 0,
  played: [], // item ids in the order they started playing
  gaps: [], // wall ms from one item's "ended" to the next one's "playing", when one follows at once
};
let endedAt = null;
// A timeline of the last switch (ms since its "ended"): where a gap between two entries goes.
const mark = (what) => {
  if (endedAt !== null) diagnostics.timeline.push([what, Math.round(performance.now() - endedAt)]);
};
diagnostics.timeline = [];
window.revengeDiagnostics = diagnostics;

// "change" (detail: the item now in the player, or null), "ended" (detail: the item that ended, at
// once), "finished" (the same, once its last report was answered), "progress" ({item, progress}).
export const events = new EventTarget();
const emit = (type, detail) => events.dispatchEvent(new CustomEvent(type, { detail }));

export const audio = $("audio");
const ui = {
  player: $("player"), nowTitle: $("now-title"), nowSub: $("now-sub"), nowStatus: $("now-status"),
  nowPlayed: $("now-played"), nowStop: $("now-stop"), rate: $("rate"), nowArt: $("now-art"),
};

// current: { item, session, hls, started, lastReportAt, gone, renewed } for the item in the player.
let current = null;
let reportChain = Promise.resolve(); // reports go out one at a time, in order
let playGeneration = 0; // which play() call is the latest
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const currentItem = () => (current ? current.item : null);
export const currentSession = () => (current ? current.session : null);

function setStatus(text) {
  ui.nowStatus.textContent = text;
}

function modeLabel(session) {
  if (session.decision === "direct") return "Direct play";
  const profile = session.profiles && session.profiles.length ? ` (${session.profiles.join(", ")})` : "";
  return `HLS${profile} via ${diagnostics.mode === "native-hls" ? "the browser" : "hls.js"}`;
}

function bufferedRanges() {
  const ranges = [];
  for (let i = 0; i < audio.buffered.length; i++) ranges.push([audio.buffered.start(i), audio.buffered.end(i)]);
  return ranges;
}

function playbackRate() {
  if (options.rate) return Math.min(MAX_PLAYBACK_RATE, Math.max(0.25, options.rate));
  return Number(ui.rate.value);
}

export function setPlayedLabel(control, played) {
  control.classList.toggle("on", Boolean(played));
  control.textContent = played ? "Played ✓" : "Mark played";
}

function teardownPlayback() {
  if (current && current.hls) {
    current.hls.destroy();
    current.hls = null;
  }
  audio.pause();
  audio.removeAttribute("src");
  audio.load();
}

function showPlayer(shown) {
  ui.player.hidden = !shown;
  document.body.classList.toggle("has-player", shown);
}

// Start ``item`` in a new session. ``startSeconds`` overrides the server's resume position (0 for the
// next entry of a queue; the position reached, to renew a session whose stream token was refused).
export async function play(item, { startSeconds = null, renewed = false } = {}) {
  const generation = ++playGeneration;
  clearError();
  await stopPlayback(renewed ? "renewing" : "switching");
  const caps = capabilities();
  diagnostics.capabilities = caps;
  const body = {
    item_id: item.id,
    device_id: deviceId(),
    capabilities: { codecs: caps.codecs, containers: caps.containers, max_bitrate: caps.max_bitrate,
      hls: caps.hls },
  };
  if (startSeconds !== null) body.start_seconds = Math.max(0, startSeconds);
  let session;
  try {
    mark("session-asked");
    session = await api("POST", "/playback/sessions", body);
    mark("session");
  } catch (err) {
    if (generation === playGeneration) {
      showError(err);
      if (!current) {
        showPlayer(false);
        emit("change", null);
      }
    }
    return false;
  }
  if (generation !== playGeneration) {
    // Another item was picked while this one was starting: the later click wins.
    api("DELETE", `/playback/sessions/${session.session_id}`).catch(() => {});
    return false;
  }
  diagnostics.session = session;
  diagnostics.startedAt = null;
  const playing = { item, session, hls: null, started: false, lastReportAt: 0, gone: false, renewed };
  current = playing;
  showPlayer(true);
  ui.nowTitle.textContent = item.title;
  ui.nowSub.textContent = subtitle(item);
  if (!renewed) ui.nowArt.replaceChildren(cover(item.art_id || null, 48, item.album || item.title));
  setPlayedLabel(ui.nowPlayed, false);
  if (!renewed) emit("change", item);
  const resume = Number(session.resume_seconds) || 0;
  const url = new URL(session.url, location.origin).toString();

  if (session.decision === "hls" && caps.player === "hlsjs") {
    diagnostics.mode = "hls.js";
    attachHlsJs(playing, url, resume);
  } else {
    diagnostics.mode = session.decision === "hls" ? "native-hls" : "direct";
    audio.src = url;
    if (resume > 0) {
      audio.addEventListener("loadedmetadata", () => {
        if (current === playing) audio.currentTime = resume;
      }, { once: true });
    }
  }
  setStatus(`${modeLabel(session)}${resume > 0 ? ` · resuming at ${formatTime(resume)}` : ""}`);
  // The default rate too: loading a new source resets the rate to it (hls.js attaches asynchronously).
  audio.defaultPlaybackRate = audio.playbackRate = playbackRate();
  try {
    await audio.play();
  } catch (err) {
    // NotAllowedError: autoplay refused (no recent click). AbortError: replaced by a newer load.
    if (current === playing && err.name === "NotAllowedError") setStatus(`${modeLabel(session)} · press play`);
  }
  return true;
}

function attachHlsJs(playing, url, resume) {
  const hls = new window.Hls({
    enableWorker: false, // the page's CSP allows no blob: workers; audio fMP4 needs no transmuxing
    startPosition: resume > 0 ? resume : -1,
    maxBufferLength: 30,
  });
  playing.hls = hls;
  hls.on(window.Hls.Events.ERROR, (_event, data) => {
    diagnostics.hlsErrors.push({ type: data.type, details: data.details, fatal: data.fatal,
      status: data.response ? data.response.code : null, at: audio.currentTime,
      buffered: bufferedRanges(), rate: audio.playbackRate,
      url: data.frag ? data.frag.url : (data.url || null) });
    if (current !== playing) return;
    const status = data.response ? data.response.code : 0;
    // A refused token does not get better with hls.js's retries (up to half a minute): renew now.
    if ((status === 401 || status === 403) && renewable(playing)) {
      renew(playing);
      return;
    }
    if (!data.fatal) return;
    if (data.type === window.Hls.ErrorTypes.MEDIA_ERROR) {
      hls.recoverMediaError();
    } else {
      showError(new Error(`playback failed: ${data.details}${status ? ` (HTTP ${status})` : ""}`));
      teardownPlayback();
    }
  });
  for (const name of ["MANIFEST_PARSED", "LEVEL_LOADED", "FRAG_LOADED", "BUFFER_APPENDED"]) {
    hls.once(window.Hls.Events[name], () => mark(name));
  }
  hls.loadSource(url);
  hls.attachMedia(audio);
}

// Renew at most once per session start, and only once it has played: a token refused at once is
// not an expired one, and retrying it would loop.
function renewable(playing) {
  return playing.started && !playing.renewed;
}

function renew(playing) {
  const position = audio.currentTime;
  const wasPlaying = !audio.paused;
  setStatus("Renewing the stream…");
  play(playing.item, { startSeconds: position, renewed: true }).then(() => {
    if (!wasPlaying && current) audio.pause();
  });
}

// Stop the current item: a final report, then end the session. "stopped" also hides the player;
// "switching" and "renewing" keep it and do not wait for the old session's end: the next session
// starts at once (the server drops the device's old session when it does; the DELETE then finds
// nothing, and a late report of the old one goes to the progress API).
export async function stopPlayback(reason = "stopped") {
  const playing = current;
  if (!playing) {
    if (reason === "stopped") {
      showPlayer(false);
      emit("change", null);
    }
    return;
  }
  if (playing.started && !audio.ended) report(playing, "stopped", audio.currentTime, { event: "stop" });
  teardownPlayback();
  current = null;
  const ended = reportChain.then(async () => {
    // Switching: the server drops this device's old session when the next one starts.
    if (playing.gone || reason !== "stopped") return;
    try {
      await api("DELETE", `/playback/sessions/${playing.session.session_id}`);
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) showError(err);
    }
  });
  if (reason === "stopped") {
    await ended;
    mark("stopped");
    showPlayer(false);
    emit("change", null);
  }
}

// The page signs out: nothing more is sent.
export function forget() {
  teardownPlayback();
  current = null;
  showPlayer(false);
  emit("change", null);
}

// One report: a session heartbeat (the server applies it as a progress update). When the session
// has ended under us (idle timeout, another tab on this device), the same report goes to the
// progress API directly, with the event it stands for.
const EVENT_FOR_STATE = { playing: "progress", paused: "pause", stopped: "stop", buffering: "progress" };

// ``event`` is what happened (start, progress, pause, seek, stop): the heartbeat carries the
// player state, the progress API (when the session is gone) the event.
function report(playing, state, position, { keepalive = false, event = EVENT_FOR_STATE[state] } = {}) {
  const rate = Math.min(MAX_PLAYBACK_RATE, Math.max(0.0625, audio.playbackRate || 1));
  const positionSeconds = Math.max(0, Number.isFinite(position) ? position : 0);
  playing.lastReportAt = Date.now();
  const send = async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        const progress = await sendReport(playing, state, positionSeconds, rate, keepalive, event);
        diagnostics.reports += 1;
        diagnostics.lastReport = { state, event, position: positionSeconds, item: playing.item.id,
          at: Date.now() };
        if (progress && current === playing) setPlayedLabel(ui.nowPlayed, progress.completed);
        return;
      } catch (err) {
        if (!isRetryable(err) || attempt >= RETRY_DELAYS_MS.length) {
          showError(err);
          return;
        }
        await sleep(RETRY_DELAYS_MS[attempt]);
      }
    }
  };
  if (keepalive) {
    // The page is going away: send now, not after the reports still in flight.
    return send();
  }
  reportChain = reportChain.then(send);
  return reportChain;
}

async function sendReport(playing, state, position, rate, keepalive, event) {
  if (!playing.gone) {
    try {
      const answer = await api("POST", `/playback/sessions/${playing.session.session_id}/heartbeat`,
        { position_seconds: position, state, playback_rate: rate }, { keepalive });
      return answer && answer.progress;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
      playing.gone = true;
    }
  }
  return api("PUT", `/playback/progress/${playing.item.id}`, {
    position_seconds: position,
    duration_seconds: playing.item.duration_ms / 1000,
    event,
    device_id: deviceId(),
    client_ts: Date.now(),
    playback_rate: rate,
  }, { keepalive });
}

export async function togglePlayed(item, control) {
  const isPlayed = control.classList.contains("on");
  try {
    const progress = await api(isPlayed ? "DELETE" : "POST", `/playback/progress/${item.id}/played`);
    setPlayedLabel(control, progress.completed);
    if (current && current.item.id === item.id) setPlayedLabel(ui.nowPlayed, progress.completed);
    emit("progress", { item, progress });
  } catch (err) {
    showError(err);
  }
}

export function togglePause() {
  if (!current) return;
  if (audio.paused) audio.play().catch(() => {});
  else audio.pause();
}

audio.addEventListener("playing", () => {
  if (!current) return;
  if (!current.started) {
    current.started = true;
    diagnostics.startedAt = audio.currentTime;
    diagnostics.played.push(current.item.id);
    if (endedAt !== null) diagnostics.gaps.push(Math.round(performance.now() - endedAt));
    endedAt = null;
    report(current, "playing", audio.currentTime, { event: "start" });
  }
  setStatus(modeLabel(current.session));
});
audio.addEventListener("pause", () => {
  // At the end the element pauses just before "ended": that one is reported as the end.
  if (current && current.started && !audio.ended) {
    report(current, "paused", audio.currentTime, { event: "pause" });
  }
});
audio.addEventListener("seeked", () => {
  if (current && current.started) {
    report(current, audio.paused ? "paused" : "playing", audio.currentTime, { event: "seek" });
  }
});
audio.addEventListener("ended", async () => {
  diagnostics.ended += 1;
  diagnostics.bufferedAtEnd = bufferedRanges();
  endedAt = performance.now();
  diagnostics.timeline = [];
  const playing = current;
  if (!playing) return;
  const end = Number.isFinite(audio.duration) ? audio.duration : playing.item.duration_ms / 1000;
  report(playing, "stopped", Math.max(end, playing.item.duration_ms / 1000), { event: "stop" });
  setStatus("Finished");
  // The queue may start the next entry at once; this item's session ends when that one starts.
  emit("ended", playing.item);
  await reportChain;
  if (current === playing) {
    // The session is over: without a source, the element cannot start an unreported replay.
    endedAt = null; // nothing followed
    teardownPlayback();
    current = null;
    emit("change", null);
    if (!playing.gone) {
      api("DELETE", `/playback/sessions/${playing.session.session_id}`).catch(() => {});
    }
  }
  emit("finished", playing.item); // its last report has been answered
});
audio.addEventListener("error", () => {
  if (!current || current.hls || !audio.error) return;
  // A network error after playback started is most likely the stream token running out (a tab
  // paused for a day): a new session renews it. Anything else is the file or the browser.
  if (audio.error.code === MediaError.MEDIA_ERR_NETWORK && renewable(current)) {
    renew(current);
    return;
  }
  showError(new Error(`the browser could not play this item (media error ${audio.error.code})`));
});

// Every 10 s of wall time while playing (whatever the playback rate).
setInterval(() => {
  if (current && current.started && !audio.paused && !audio.ended
      && Date.now() - current.lastReportAt >= REPORT_INTERVAL_MS) {
    report(current, "playing", audio.currentTime, { event: "progress" });
  }
}, 1000);

// Leaving the page: one last report that outlives the page (keepalive).
window.addEventListener("pagehide", () => {
  if (current && current.started && !audio.ended) {
    report(current, "paused", audio.currentTime, { keepalive: true, event: "pause" });
  }
});

ui.nowStop.addEventListener("click", () => stopPlayback("stopped"));
ui.nowPlayed.addEventListener("click", () => {
  if (current) togglePlayed(current.item, ui.nowPlayed);
});

const savedRate = localStorage.getItem(RATE_STORE);
if (savedRate && [...ui.rate.options].some((o) => o.value === savedRate)) ui.rate.value = savedRate;
ui.rate.addEventListener("change", () => {
  audio.defaultPlaybackRate = audio.playbackRate = Number(ui.rate.value);
  localStorage.setItem(RATE_STORE, ui.rate.value);
});
