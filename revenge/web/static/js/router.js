// Hash routes (#/albums, #/album/<id>, …): no server routes to add, and the back button works.
// A route is a pattern of fixed words and :params; its view renders into #view and gets the params
// and the query (#/albums?sort=year).

const routes = [];
let fallback = null;
let generation = 0;

export function route(pattern, render) {
  routes.push({ parts: pattern.split("/").filter(Boolean), render });
}

export function otherwise(render) {
  fallback = render;
}

export function parse(hash) {
  const [path, query = ""] = hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  for (const candidate of routes) {
    if (candidate.parts.length !== parts.length) continue;
    const params = {};
    const ok = candidate.parts.every((part, i) => {
      if (part.startsWith(":")) {
        params[part.slice(1)] = parts[i];
        return true;
      }
      return part === parts[i];
    });
    if (ok) return { render: candidate.render, params, query: new URLSearchParams(query), path };
  }
  return { render: fallback, params: {}, query: new URLSearchParams(query), path };
}

// Each render gets ``isCurrent()``: false once another route was opened (a slow answer must not
// draw over the newer view).
export function start(onRoute) {
  const go = () => {
    const mine = ++generation;
    const match = parse(location.hash);
    onRoute(match);
    if (match.render) match.render({ ...match, isCurrent: () => mine === generation });
  };
  window.addEventListener("hashchange", go);
  go();
}

export const albumHref = (id) => `#/album/${encodeURIComponent(id)}`;
export const artistHref = (id) => `#/artist/${encodeURIComponent(id)}`;
export const genreHref = (name) => `#/genre/${encodeURIComponent(name)}`;
