/**
 * The views in the page's URL, so a view can be shared by copying the address. Pure.
 *
 * One `view` parameter per view: `?view=<router>~<window>m~<iface>,<iface>`, each part
 * percent-encoded on its own so names with commas, tildes or `<pppoe-...>` brackets survive:
 *
 *     ?view=isp-bras~5m~sfp-sfpplus1,%3Cpppoe-user0092%3E&view=office~1m
 *
 * A view without the interface part charts the router's busiest interfaces (and the page then
 * writes the chosen names into the URL). Other parameters are left as they are (a token is
 * taken out of the URL before this module reads it: token.js).
 */

import { MAX_CHARTED } from "./feed.js";

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

/** A new view: `router` null means the first router the gateway lists. */
export function newView(router = null) {
  return { router, window: DEFAULT_WINDOW, interfaces: null };
}

/** One view as its URL parameter value (already encoded). */
export function formatView(view) {
  const parts = [encode(view.router ?? ""), `${view.window}m`];
  if (view.interfaces !== null) parts.push(view.interfaces.map(encode).join(","));
  return parts.join("~");
}

/** One raw (still encoded) parameter value as a view. */
export function parseView(raw) {
  const [router = "", window = "", names] = raw.split("~");
  const minutes = Number.parseInt(window, 10);
  const interfaces =
    names === undefined
      ? null
      : [...new Set(names.split(",").filter(Boolean).map(decode))].slice(0, MAX_CHARTED);
  return {
    router: decode(router) || null,
    window: WINDOWS.includes(minutes) ? minutes : DEFAULT_WINDOW,
    interfaces,
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
