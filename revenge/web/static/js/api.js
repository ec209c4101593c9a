// The API client: the key kept in localStorage, JSON in and out, errors as ApiError with the server's
// {"error": {code, message, field}}. A 401 for the page's own key signs the page out (signOutHook).

export const API = "/api/v1";
const KEY_STORE = "revenge.apiKey";
const DEVICE_STORE = "revenge.deviceId";

export class ApiError extends Error {
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
let signOutHook = () => {};

export const currentKey = () => apiKey;
export function setKey(key) {
  apiKey = key;
  if (key) localStorage.setItem(KEY_STORE, key);
  else localStorage.removeItem(KEY_STORE);
}
export function onUnauthorized(hook) {
  signOutHook = hook;
}

export const authHeaders = (key = apiKey) => ({ Authorization: `Bearer ${key}` });

export async function api(method, path, body, { keepalive = false, key = apiKey, signal } = {}) {
  const headers = { ...authHeaders(key), Accept: "application/json" };
  const init = { method, headers, keepalive, cache: "no-store", signal };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
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
    error.body = data;
    if (response.status === 401 && key === apiKey) signOutHook(error);
    throw error;
  }
  return data;
}

export const isRetryable = (err) => err instanceof ApiError && (err.status === 0 || err.status >= 500);

export function deviceId() {
  let id = localStorage.getItem(DEVICE_STORE);
  if (!id) {
    // crypto.randomUUID needs a secure context; a LAN server over plain http is not one.
    const bytes = crypto.getRandomValues(new Uint8Array(8));
    id = "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem(DEVICE_STORE, id);
  }
  return id;
}
