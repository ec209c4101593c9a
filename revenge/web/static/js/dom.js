// Small DOM helpers and the error banner, shared by every view.
import { ApiError } from "./api.js";

export const $ = (id) => document.getElementById(id);

export function node(tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined && text !== null) element.textContent = text;
  return element;
}

export function button(label, className, onClick, title) {
  const b = node("button", className, label);
  b.type = "button";
  if (title) {
    b.title = title;
    b.setAttribute("aria-label", title);
  }
  b.addEventListener("click", (event) => {
    event.stopPropagation();
    onClick(event);
  });
  return b;
}

export function link(href, className, text) {
  const a = node("a", className, text);
  a.href = href;
  return a;
}

export function formatTime(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "–:––";
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

// "1 h 12 min" for an album's total time; "42 min" under an hour, "40 s" under a minute.
export function formatLength(ms) {
  if (ms < 59_500) return `${Math.round(ms / 1000)} s`;
  const minutes = Math.round(ms / 60000);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export const TYPE_LABELS = { track: "Music", episode: "Podcast", audiobook: "Audiobook" };

export function subtitle(item) {
  const who = item.artist || item.album_artist;
  const parts = [];
  if (who) parts.push(who);
  if (item.album && item.album !== item.title && item.album !== who) parts.push(item.album);
  if (!parts.length) parts.push(TYPE_LABELS[item.type] || item.type);
  return parts.join(" — ");
}

export function showError(err) {
  const text = err instanceof ApiError ? err.describe() : String(err && err.message ? err.message : err);
  $("error-text").textContent = text;
  $("error").hidden = false;
  console.warn("revenge:", text);
}

export function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

// A view's message in place of its content: nothing to show, or why it could not be loaded.
export function emptyState(text, className = "empty") {
  return node("p", `muted ${className}`, text);
}
