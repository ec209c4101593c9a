// What this browser can play, and the page's test and diagnostic switches (query string):
// ?force=hls declares no direct-play container, so the server must answer HLS; ?codecs=aac,opus limits
// the declared codecs; ?player=hlsjs|native picks the HLS player instead of preferring the browser's
// own; ?rate=16 starts every item at that speed (a rate set before playback starts, because changing it
// mid-stream makes Chromium's audio renderer underflow for a moment, which hls.js reports as a stall).

const params = new URLSearchParams(location.search);
export const options = {
  forceHls: params.get("force") === "hls",
  codecs: params.get("codecs") ? new Set(params.get("codecs").split(",").map((c) => c.trim())) : null,
  player: params.get("player"), // "hlsjs" | "native" | null
  rate: Number(params.get("rate")) || null,
};

export function capabilities() {
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
