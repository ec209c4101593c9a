// Cover art. The art API takes the API key in a header, which an <img src> cannot send: each picture
// is fetched (the browser's HTTP cache keeps it: the answers are immutable) and shown from an object
// URL, once it scrolls near the screen. Sizes are the server's fixed set.
import { API, authHeaders } from "./api.js";
import { node } from "./dom.js";

export const ART_SIZES = [64, 128, 256, 512, 800, 1200];
const urls = new Map(); // "art_id@size" → the promise of an object URL, least recently used first
// Bounded: a long scroll through a big library would otherwise keep every picture's bytes. An evicted
// URL is revoked; an <img> that already shows it keeps its picture.
const MAX_URLS = 400;

// The smallest size of the set that covers ``css`` pixels on this screen.
export function artSize(css) {
  const want = css * Math.min(3, window.devicePixelRatio || 1);
  return ART_SIZES.find((s) => s >= want) || ART_SIZES[ART_SIZES.length - 1];
}

function artUrl(artId, size) {
  const key = `${artId}@${size}`;
  if (urls.has(key)) {
    const known = urls.get(key);
    urls.delete(key);
    urls.set(key, known);
    return known;
  }
  const pending = fetch(`${API}/art/${artId}?size=${size}`, { headers: authHeaders() })
    .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(`art ${r.status}`))))
    .then((blob) => URL.createObjectURL(blob));
  urls.set(key, pending);
  pending.catch(() => urls.delete(key)); // a later view may try again
  while (urls.size > MAX_URLS) {
    const [oldest, old] = urls.entries().next().value;
    urls.delete(oldest);
    old.then((url) => URL.revokeObjectURL(url), () => {});
  }
  return pending;
}

const observer = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    observer.unobserve(entry.target);
    load(entry.target);
  }
}, { rootMargin: "300px" }) : null;

function load(frame) {
  const img = frame.querySelector("img");
  artUrl(frame.dataset.artId, Number(frame.dataset.size)).then((url) => {
    img.src = url;
    frame.classList.add("loaded");
  }, () => frame.classList.add("missing"));
}

// A square cover of ``css`` pixels: the art, or a tinted tile with the initial of ``label``.
export function cover(artId, css, label, className = "cover") {
  const frame = node("span", className);
  frame.style.setProperty("--hue", String(hue(label || "")));
  frame.append(node("span", "cover-initial", (label || "?").trim().charAt(0).toUpperCase()));
  if (!artId) return frame;
  const img = node("img");
  img.alt = "";
  img.decoding = "async";
  frame.dataset.artId = artId;
  frame.dataset.size = String(artSize(css));
  frame.append(img);
  if (observer) observer.observe(frame);
  else load(frame);
  return frame;
}

function hue(text) {
  let h = 0;
  for (const ch of text) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}
