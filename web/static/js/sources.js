/**
 * A router's sources as the page sees them (README, "Sources"): what a frame of each holds and
 * how its rows read. Pure; no DOM.
 *
 * - `interfaces`: `/interface/print` rows, rates `rx_bps`/`tx_bps` (the router's side);
 * - `queues`: simple queues, rates `up_bps`/`down_bps` (the customer's side), the plan
 *   `max_up_bps`/`max_down_bps` (null: unlimited) and its use `util_up`/`util_down` (percent);
 * - `hotspot`: hotspot users logged in, rates `up_bps`/`down_bps`, `address`, `mac`, `uptime`.
 *
 * A traffic frame's rows are under the key named as its source; a frame without `source` (a
 * gateway from before sources existed) is an `interfaces` frame.
 */

export const SOURCES = Object.freeze(["interfaces", "queues", "hotspot"]);
export const DEFAULT_SOURCE = "interfaces";

/**
 * What the page says about each source: `label` (the switch), `noun`/`plural` (sentences),
 * `dirs` (the two directions' short names, in the order of `rates`) and `dirTitles` (table
 * headings).
 */
export const SOURCE_INFO = Object.freeze({
  interfaces: Object.freeze({
    label: "Interfaces",
    noun: "interface",
    plural: "interfaces",
    dirs: Object.freeze(["rx", "tx"]),
    dirTitles: Object.freeze(["Received (rx)", "Sent (tx)"]),
  }),
  queues: Object.freeze({
    label: "Queues",
    noun: "queue",
    plural: "queues",
    dirs: Object.freeze(["up", "down"]),
    dirTitles: Object.freeze(["Upload (customer sent)", "Download (customer received)"]),
  }),
  hotspot: Object.freeze({
    label: "Hotspot",
    noun: "hotspot user",
    plural: "hotspot users",
    dirs: Object.freeze(["up", "down"]),
    dirTitles: Object.freeze(["Upload (user sent)", "Download (user received)"]),
  }),
});

/** `value` when it names a source, else null. */
export function sourceOf(value) {
  return SOURCES.includes(value) ? value : null;
}

/** The source a message (frame, status, history) is about: `interfaces` when it names none. */
export function messageSource(message) {
  return sourceOf(message?.source) ?? DEFAULT_SOURCE;
}

/** The rows of a traffic frame of `source` (an empty list when it has none). */
export function rowsOf(frame, source = DEFAULT_SOURCE) {
  const rows = frame?.[source];
  return Array.isArray(rows) ? rows : [];
}

const num = (value) => (typeof value === "number" && Number.isFinite(value) ? value : null);

/**
 * A row's two rates in bits/s, `[first, second]` in the order of SOURCE_INFO's `dirs` (rx, tx
 * for interfaces; up, down otherwise); null where the gateway sent null (first sample, reset).
 */
export function ratesOf(row, source = DEFAULT_SOURCE) {
  if (source === "interfaces") return [num(row.rx_bps), num(row.tx_bps)];
  return [num(row.up_bps), num(row.down_bps)];
}

/** A queue's plan, `[up, down]` bits/s, each null when unlimited (or not a queue). */
export function planOf(row, source = "queues") {
  if (source !== "queues") return [null, null];
  const limit = (value) => (num(value) !== null && value > 0 ? value : null);
  return [limit(row.max_up_bps), limit(row.max_down_bps)];
}

/** What one row charts: its two rates, then, for a queue, its plan (`[a, b, planA, planB]`). */
export function sampleOf(row, source = DEFAULT_SOURCE) {
  const rates = ratesOf(row, source);
  return source === "queues" ? [...rates, ...planOf(row, source)] : rates;
}

/** A row's total rate, for ranking: -1 when it has no rate at all (sorts last). */
export function totalRate(row, source = DEFAULT_SOURCE) {
  const [a, b] = ratesOf(row, source);
  if (a === null && b === null) return -1;
  return (a ?? 0) + (b ?? 0);
}

/**
 * The text a search matches, in lower case: the name, the comment, and what else a NOC types
 * to find a customer (an interface's type, a queue's target and parent, a user's address and
 * MAC, a PPP session's login, caller id and address).
 */
export function searchText(row, source = DEFAULT_SOURCE) {
  const parts = [row.name, row.comment];
  if (source === "interfaces") parts.push(row.type);
  if (source === "queues") parts.push(row.target, row.parent);
  if (source === "hotspot") parts.push(row.address, row.mac, row.server);
  const session = row.session;
  if (session && typeof session === "object") {
    parts.push(session.user, session.caller_id, session.address);
  }
  return parts
    .filter((part) => typeof part === "string" && part !== "")
    .join("\n")
    .toLowerCase();
}

/** Whether `row` matches a search `query` (already trimmed; empty matches everything). */
export function matches(row, query, source = DEFAULT_SOURCE) {
  if (!query) return true;
  return searchText(row, source).includes(query.toLowerCase());
}

/** A row's comment as text ("" when it has none): the router's text, exactly as sent. */
export function commentOf(row) {
  return typeof row?.comment === "string" ? row.comment : "";
}

/**
 * A PPP session's uptime in seconds at `now` (Unix seconds, the gateway's clock): sessions say
 * when they began (`since`), so the figure keeps counting between reads of `/ppp/active`; null
 * when unknown.
 */
export function sessionUptime(session, now) {
  if (session === null || typeof session !== "object") return null;
  if (typeof session.since === "number" && typeof now === "number") {
    return Math.max(0, now - session.since);
  }
  return null;
}
