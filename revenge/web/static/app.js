// Revenge web player: plain JS, no framework. Talks to /api/v1 with the API key kept in localStorage,
// plays through a playback session (direct file or HLS, as the server decides from what this browser
// declares it can play), and reports progress through the session's heartbeats.
//
// Test and diagnostic switches (query string): ?force=hls declares no direct-play container, so the
// server must answer HLS; ?codecs=aac,opus limits the declared codecs; ?player=hlsjs|native picks the
// HLS player instead of preferring the browser's own; ?rate=16 starts every item at that speed (a
// rate set before playback starts, because changing it mid-stream makes Chromium's audio renderer
// underflow for a moment, which hls.js reports as a stall).
"use strict";

(() => {
  const API = "/api/v1";
  const KEY_STORE = "revenge.apiKey";
  const DEVICE_STORE = "revenge.deviceId";
  const RATE_STORE = "revenge.playbackRate";
  const REPORT_INTERVAL_MS = 10_000;
  const PAGE_SIZE = 50;
  const SEARCH_DEBOUNCE_MS = 250;
  const RETRY_DELAYS_MS = [1000, 3000];
  const MAX_PLAYBACK_RATE = 16; // what the server accepts (and Chromium's ceiling)

  const params = new URLSearchParams(location.search);
  const options = {
    forceHls: params.get("force") === "hls",
    codecs: params.get("codecs") ? new Set(params.get("codecs").split(",").map((c) => c.trim())) : null,
    player: params.get("player"), // "hlsjs" | "native" | null
    rate: Number(params.get("rate")) || null,
  };

  const $ = (id) => document.getElementById(id);
  const ui = {
    login: $("login"), loginForm: $("login-form"), loginKey: $("login-key"),
    library: $("library"), logout: $("logout"),
    searchForm: $("search-form"), searchQ: $("search-q"), searchType: $("search-type"),
    continueShelf: $("continue"), continueList: $("continue-list"),
    items: $("items"), itemsEmpty: $("items-empty"), more: $("more"), browseTitle: $("browse-title"),
    error: $("error"), errorText: $("error-text"), errorClose: $("error-close"),
    player: $("player"), audio: $("audio"), nowTitle: $("now-title"), nowSub: $("now-sub"),
    nowStatus: $("now-status"), nowPlayed: $("now-played"), nowStop: $("now-stop"), rate: $("rate"),
  };

  // What tests and curious users can read (never written from outside).
  const diagnostics = {
    mode: null, // "direct" | "hls.js" | "native-hls"
    capabilities: null,
    session: null, // the last session the server started for this page
    startedAt: null, // media time at the first "playing" of the current item
    hlsErrors: [],
    bufferedAtEnd: null, // what the element held when "ended" fired: holes would show here
    reports: 0,
    lastReport: null,
    ended: 0,
  };
  window.revengeDiagnostics = diagnostics;

  // ---- API ---------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message, field) {
      super(message);
      this.status = status;
      this.code = code;
      this.field = field;
    }
    describe() {
      const where = this.field ? ` (field: ${this.field})` : "";
      const status = this.status ? `${this.status} ` : "";
      return `${status}${this.code}: ${this.message}${where}`;
    }
  }

  let apiKey = localStorage.getItem(KEY_STORE);

  async function api(method, path, body, { keepalive = false, key = apiKey } = {}) {
    const headers = { Authorization: `Bearer ${key}`, Accept: "application/json" };
    const init = { method, headers, keepalive, cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (err) {
      throw new ApiError(0, "network", `the server could not be reached (${err.message})`, null);
    }
    if (response.status === 204) return null;
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (!response.ok) {
      const e = (data && data.error) || {};
      const error = new ApiError(response.status, e.code || `http_${response.status}`,
        e.message || response.statusText || "request failed", e.field || null);
      if (response.status === 401 && key === apiKey) signOut(error);
      throw error;
    }
    return data;
  }

  const isRetryable = (err) => err instanceof ApiError && (err.status === 0 || err.status >= 500);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // ---- errors and small helpers ------------------------------------------------------------------

  function showError(err) {
    const text = err instanceof ApiError ? err.describe() : String(err && err.message ? err.message : err);
    ui.errorText.textContent = text;
    ui.error.hidden = false;
    console.warn("revenge:", text);
  }

  function clearError() {
    ui.error.hidden = true;
    ui.errorText.textContent = "";
  }

  function node(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined && text !== null) element.textContent = text;
    return element;
  }

  function button(label, className, onClick, title) {
    const b = node("button", className, label);
    b.type = "button";
    if (title) b.title = title;
    b.addEventListener("click", (event) => {
      event.stopPropagation();
      onClick(event);
    });
    return b;
  }

  function formatTime(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0) return "–:––";
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
  }

  const TYPE_LABELS = { track: "Music", episode: "Podcast", audiobook: "Audiobook" };

  function subtitle(item) {
    const who = item.artist || item.album_artist;
    const parts = [];
    if (who) parts.push(who);
    if (item.album && item.album !== item.title && item.album !== who) parts.push(item.album);
    if (!parts.length) parts.push(TYPE_LABELS[item.type] || item.type);
    return parts.join(" — ");
  }

  function deviceId() {
    let id = localStorage.getItem(DEVICE_STORE);
    if (!id) {
      // crypto.randomUUID needs a secure context; a LAN server over plain http is not one.
      const bytes = crypto.getRandomValues(new Uint8Array(8));
      id = "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
      localStorage.setItem(DEVICE_STORE, id);
    }
    return id;
  }

  // ---- what this browser can play ----------------------------------------------------------------

  function capabilities() {
    const probe = document.createElement("audio");
    const can = (type) => probe.canPlayType(type) !== "";
    const MS = window.ManagedMediaSource || window.MediaSource;
    const mse = (type) => Boolean(MS && MS.isTypeSupported && MS.isTypeSupported(type));
    const nativeHls = can("application/vnd.apple.mpegurl");
    const hlsJs = Boolean(window.Hls && window.Hls.isSupported());
    // The browser's own HLS where it is Apple's (Safari, every iOS browser: AVFoundation picks among
    // the variants' codecs properly); hls.js elsewhere. Chromium now answers "maybe" for HLS too, but
    // its player cannot switch codecs between variants (a FLAC/Opus/AAC ladder fails with "Audio codec
    // changes not allowed"), which hls.js handles by keeping to one codec set. Native HLS is the last
    // resort where hls.js cannot run.
    const apple = /^Apple/.test(navigator.vendor || "");
    const preferNative = nativeHls && (apple || !hlsJs);
    const useNative = options.player === "native" || (options.player !== "hlsjs" && preferNative);
    const hls = useNative ? nativeHls : hlsJs;
    // HLS variants are fMP4: a codec the server may pick for HLS must play in fMP4 through the HLS
    // path this page will use, or the server could choose a variant the browser cannot decode.
    const inFmp4 = (codec) => {
      const type = `audio/mp4; codecs="${codec}"`;
      return useNative ? can(type) : mse(type);
    };
    const direct = {
      mp4: can("audio/mp4"), mp3: can("audio/mpeg"), flac: can("audio/flac"),
      ogg: can("audio/ogg"), webm: can("audio/webm"), wav: can("audio/wav"),
    };
    const codecs = [];
    const hlsCodec = (name, fmp4Codec, directly) => {
      if (hls ? inFmp4(fmp4Codec) : directly) codecs.push(name);
    };
    hlsCodec("aac", "mp4a.40.2", can('audio/mp4; codecs="mp4a.40.2"'));
    hlsCodec("opus", "opus", can('audio/ogg; codecs="opus"') || can('audio/webm; codecs="opus"'));
    hlsCodec("flac", "flac", direct.flac);
    if (can("audio/mpeg")) codecs.push("mp3");
    if (can('audio/ogg; codecs="vorbis"')) codecs.push("vorbis");
    if (direct.wav) codecs.push("pcm");
    if (can('audio/mp4; codecs="alac"')) codecs.push("alac");

    const declared = options.codecs ? codecs.filter((c) => options.codecs.has(c)) : codecs;
    const containers = options.forceHls ? [] : Object.keys(direct).filter((name) => direct[name]);
    return { codecs: declared, containers, max_bitrate: null, hls, player: useNative ? "native" : "hlsjs" };
  }

  // ---- sign in / out -----------------------------------------------------------------------------

  function showLogin() {
    ui.login.hidden = false;
    ui.library.hidden = true;
    ui.searchForm.hidden = true;
    ui.logout.hidden = true;
    ui.loginKey.focus();
  }

  function showLibrary() {
    ui.login.hidden = true;
    ui.library.hidden = false;
    ui.searchForm.hidden = false;
    ui.logout.hidden = false;
  }

  function signOut(reason) {
    apiKey = null;
    localStorage.removeItem(KEY_STORE);
    teardownPlayback();
    ui.player.hidden = true;
    current = null;
    showLogin();
    if (reason) showError(reason);
  }

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
    apiKey = key;
    localStorage.setItem(KEY_STORE, key);
    ui.loginKey.value = "";
    showLibrary();
    await refreshAll();
  });

  ui.logout.addEventListener("click", async () => {
    await stopPlayback("stopped");
    signOut(null);
  });
  ui.errorClose.addEventListener("click", clearError);

  // ---- browse and search -------------------------------------------------------------------------

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

  async function loadItems(append) {
    const generation = ++listGeneration;
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
    if (current) markPlaying(current.item.id);
    listCursor = page.next_cursor;
    ui.more.hidden = !listCursor;
    ui.itemsEmpty.hidden = ui.items.children.length > 0;
    const q = ui.searchQ.value.trim();
    ui.browseTitle.textContent = q ? `Results for “${q}”` : (TYPE_LABELS[ui.searchType.value] || "Library");
  }

  function itemRow(item) {
    const li = node("li", "item");
    li.dataset.itemId = item.id;
    const main = node("button", "item-main");
    main.type = "button";
    main.title = `Play ${item.title}`;
    main.append(node("span", "item-title", item.title), node("span", "item-sub", subtitle(item)));
    main.addEventListener("click", () => play(item));
    const meta = node("span", "item-meta");
    meta.append(node("span", `badge badge-${item.type}`, TYPE_LABELS[item.type] || item.type),
      node("span", "item-duration", formatTime(item.duration_ms / 1000)));
    const playButton = button("▶", "play", () => play(item), `Play ${item.title}`);
    playButton.setAttribute("aria-label", `Play ${item.title}`);
    const played = button("Mark played", "ghost small played-toggle", () => togglePlayed(item, played));
    li.append(playButton, main, meta, played);
    return li;
  }

  async function togglePlayed(item, control) {
    const isPlayed = control.classList.contains("on");
    try {
      const progress = await api(isPlayed ? "DELETE" : "POST", `/playback/progress/${item.id}/played`);
      setPlayedLabel(control, progress.completed);
      if (current && current.item.id === item.id) setPlayedLabel(ui.nowPlayed, progress.completed);
      await loadContinue();
    } catch (err) {
      showError(err);
    }
  }

  function setPlayedLabel(control, played) {
    control.classList.toggle("on", Boolean(played));
    control.textContent = played ? "Played ✓" : "Mark played";
  }

  let searchTimer = null;
  ui.searchQ.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => loadItems(false), SEARCH_DEBOUNCE_MS);
  });
  ui.searchForm.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(searchTimer);
    loadItems(false);
  });
  ui.searchType.addEventListener("change", () => loadItems(false));
  ui.more.addEventListener("click", () => loadItems(true));

  // ---- continue listening ------------------------------------------------------------------------

  async function loadContinue() {
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
    open.addEventListener("click", () => play(item));
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

  async function refreshAll() {
    await Promise.all([loadContinue(), loadItems(false)]);
  }

  // ---- playback ----------------------------------------------------------------------------------

  // current: { item, session, hls, started, lastReportAt, gone } for the item in the player.
  let current = null;
  let reportChain = Promise.resolve(); // reports go out one at a time, in order
  let playGeneration = 0; // which play() call is the latest
  const audio = ui.audio;

  function setStatus(text) {
    ui.nowStatus.textContent = text;
  }

  function modeLabel(session) {
    if (session.decision === "direct") return "Direct play";
    const profile = session.profiles && session.profiles.length ? ` (${session.profiles.join(", ")})` : "";
    return `HLS${profile} via ${diagnostics.mode === "native-hls" ? "the browser" : "hls.js"}`;
  }

  function markPlaying(itemId) {
    for (const row of ui.items.children) row.classList.toggle("playing", row.dataset.itemId === itemId);
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

  function teardownPlayback() {
    if (current && current.hls) {
      current.hls.destroy();
      current.hls = null;
    }
    audio.pause();
    audio.removeAttribute("src");
    audio.load();
  }

  // Start ``item`` in a new session. ``startSeconds`` overrides the server's resume position (used to
  // renew a session whose stream token was refused, at the position the player had reached).
  async function play(item, { startSeconds = null, renewed = false } = {}) {
    const generation = ++playGeneration;
    clearError();
    await stopPlayback(renewed ? "renewing" : "stopped");
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
      session = await api("POST", "/playback/sessions", body);
    } catch (err) {
      if (generation === playGeneration) showError(err);
      return;
    }
    if (generation !== playGeneration) {
      // Another item was picked while this one was starting: the later click wins.
      api("DELETE", `/playback/sessions/${session.session_id}`).catch(() => {});
      return;
    }
    diagnostics.session = session;
    diagnostics.startedAt = null;
    const playing = { item, session, hls: null, started: false, lastReportAt: 0, gone: false, renewed };
    current = playing;
    ui.player.hidden = false;
    document.body.classList.add("has-player");
    markPlaying(item.id);
    ui.nowTitle.textContent = item.title;
    ui.nowSub.textContent = subtitle(item);
    setPlayedLabel(ui.nowPlayed, false);
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

  // Stop the current item: a final report, then end the session.
  async function stopPlayback(reason) {
    const playing = current;
    if (!playing) return;
    if (playing.started && !audio.ended) report(playing, "stopped", audio.currentTime, { event: "stop" });
    teardownPlayback();
    current = null;
    await reportChain;
    if (!playing.gone) {
      try {
        await api("DELETE", `/playback/sessions/${playing.session.session_id}`);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) showError(err);
      }
    }
    if (reason === "stopped") {
      markPlaying(null);
      ui.player.hidden = true;
      document.body.classList.remove("has-player");
    }
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

  audio.addEventListener("playing", () => {
    if (!current) return;
    if (!current.started) {
      current.started = true;
      diagnostics.startedAt = audio.currentTime;
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
    const playing = current;
    if (!playing) return;
    const end = Number.isFinite(audio.duration) ? audio.duration : playing.item.duration_ms / 1000;
    report(playing, "stopped", Math.max(end, playing.item.duration_ms / 1000), { event: "stop" });
    setStatus("Finished");
    await reportChain;
    if (current === playing) {
      // The session is over: without a source, the element cannot start an unreported replay.
      teardownPlayback();
      current = null;
      markPlaying(null);
      if (!playing.gone) {
        api("DELETE", `/playback/sessions/${playing.session.session_id}`).catch(() => {});
      }
    }
    loadContinue();
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

  // ---- start -------------------------------------------------------------------------------------

  if (apiKey) {
    showLibrary();
    refreshAll();
  } else {
    showLogin();
  }
})();
