/**
 * The views in the page's URL, so a view can be shared by copying the address. Pure.
 *
 * One `view` parameter per view: `?view=<router>[~<source>]~<window>m~<name>,<name>`, each part
 * percent-encoded on its own so names with commas, tildes or `<pppoe-...>` brackets survive:
 *
 *     ?view=isp-bras~5m~sfp-sfpplus1,%3Cpppoe-user0092%3E&view=isp-bras~queues~1m~cust0007
 *
 * The source part (`queues`, `hotspot`) is left out for interfaces, so a view's URL from before
 * sources existed means what it always did. A view without the name part charts the busiest
 * rows of its source (and the page then writes the chosen names into the URL). Other
 * parameters are left as they are (a token is taken out of the URL before this module reads
 * it: token.js).
 */

import { MAX_CHARTED } from "./feed.js";
import { DEFAULT_SOURCE, sourceOf } from "./sources.js";

/** The time windows offered, in minutes. */
export const WINDOWS = [1, 5, 15];
export const DEFAULT_WINDOW = 5;

const encode = (text) => encodeURIComponent(text).replace(/~/g, "%7E");

function decode(text) {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text; // a hand-edited URL with a stray % keeps its text
  }
}

/**
 * A new view: `router` null means the first router the gateway lists; `names` (the charted
 * rows of `source`) null means its busiest, chosen once its first frame is in.
 */
export function newView(router = null, source = DEFAULT_SOURCE) {
  return { router, source, window: DEFAULT_WINDOW, names: null };
}

/** One view as its URL parameter value (already encoded). */
export function formatView(view) {
  const parts = [encode(view.router ?? "")];
  if (view.source && view.source !== DEFAULT_SOURCE) parts.push(view.source);
  parts.push(`${view.window}m`);
  if (view.names !== null) parts.push(view.names.map(encode).join(","));
  return parts.join("~");
}

/** One raw (still encoded) parameter value as a view. */
export function parseView(raw) {
  const parts = raw.split("~");
  const router = parts.shift() ?? "";
  // The source part is there when the next part names one (a window always ends in "m").
  const source = sourceOf(decode(parts[0] ?? ""));
  if (source !== null) parts.shift();
  const [window = "", names] = parts;
  const minutes = Number.parseInt(window, 10);
  return {
    router: decode(router) || null,
    source: source ?? DEFAULT_SOURCE,
    window: WINDOWS.includes(minutes) ? minutes : DEFAULT_WINDOW,
    names:
      names === undefined
        ? null
        : [...new Set(names.split(",").filter(Boolean).map(decode))].slice(0, MAX_CHARTED),
  };
}

function pairs(search) {
  return search
    .replace(/^\?/, "")
    .split("&")
    .filter(Boolean)
    .map((pair) => {
      const at = pair.indexOf("=");
      return at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
    });
}

/** The views in a `location.search`; one default view when there are none. */
export function parseViews(search) {
  const views = pairs(search)
    .filter(([key]) => decode(key) === "view")
    .map(([, value]) => parseView(value));
  return views.length ? views : [newView()];
}

/** `location.search` with its views replaced by `views`, everything else kept in place. */
export function formatSearch(search, views) {
  const kept = pairs(search)
    .filter(([key]) => decode(key) !== "view")
    .map(([key, value]) => (value === "" ? key : `${key}=${value}`));
  const all = [...kept, ...views.map((view) => `view=${formatView(view)}`)];
  return all.length ? `?${all.join("&")}` : "";
}
