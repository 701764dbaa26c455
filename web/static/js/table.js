/**
 * The model behind the queues and hotspot tables: which rows a search keeps, in what order,
 * how many are drawn, and how full each plan bar is. Pure; no DOM.
 *
 * Utilisation is the rate as a percentage of the plan (a queue's `max-limit`): the gateway
 * sends it (`util_up`, `util_down`), and `utilisation()` computes the same from a rate and a
 * plan for a row that lacks it. An unlimited plan has no utilisation (null), never 0 %: a bar
 * would say the customer uses none of a plan it does not have.
 */

import { compareNames } from "./format.js";
import { matches, planOf, ratesOf, totalRate } from "./sources.js";

/** Rows a table draws at most; a search narrows the rest (an ISP router has thousands). */
export const TABLE_LIMIT = 100;

/** `rate` as a percentage of `plan` (both bits/s), one decimal; null without either. */
export function utilisation(rate, plan) {
  if (typeof rate !== "number" || !Number.isFinite(rate)) return null;
  if (typeof plan !== "number" || !Number.isFinite(plan) || plan <= 0) return null;
  return Math.round((rate / plan) * 1000) / 10;
}

/** How much of a bar to fill for `percent` (0 to 1; a burst over 100 % fills it, no more). */
export function barFill(percent) {
  if (typeof percent !== "number" || !Number.isFinite(percent)) return 0;
  return Math.min(1, Math.max(0, percent / 100));
}

/**
 * A queue's utilisation of its plan, `[up, down]` in percent (null: unlimited, or no rate):
 * the gateway's figures, or computed from the rates and plan when the row has none.
 */
export function utilisationOf(row) {
  const [up, down] = ratesOf(row, "queues");
  const [maxUp, maxDown] = planOf(row, "queues");
  const given = (value, rate, plan) =>
    typeof value === "number" && Number.isFinite(value) ? value : utilisation(rate, plan);
  return [given(row.util_up, up, maxUp), given(row.util_down, down, maxDown)];
}

/** The higher of a queue's two utilisations (null when both are). */
export function peakUtilisation(row) {
  const values = utilisationOf(row).filter((value) => value !== null);
  return values.length ? Math.max(...values) : null;
}

/**
 * The sort keys a table offers, per source: `key -> row => number | string | null`. Numbers
 * sort largest first by default (the busiest on top), names A to Z; null sorts last either
 * way (a rate not defined this tick, an unlimited plan's utilisation).
 */
export const SORT_KEYS = Object.freeze({
  queues: Object.freeze({
    name: (row) => row.name,
    util: (row) => peakUtilisation(row),
    up: (row) => ratesOf(row, "queues")[0],
    down: (row) => ratesOf(row, "queues")[1],
    rate: (row) => nonNegative(totalRate(row, "queues")),
  }),
  hotspot: Object.freeze({
    name: (row) => row.name,
    up: (row) => ratesOf(row, "hotspot")[0],
    down: (row) => ratesOf(row, "hotspot")[1],
    rate: (row) => nonNegative(totalRate(row, "hotspot")),
    uptime: (row) => (typeof row.uptime === "number" ? row.uptime : null),
  }),
  interfaces: Object.freeze({
    name: (row) => row.name,
    rate: (row) => nonNegative(totalRate(row, "interfaces")),
  }),
});

/**
 * The order a table opens in: queues by utilisation (the top of the plans), hotspot users by
 * download (what a guest network runs out of), interfaces by total rate.
 */
export const DEFAULT_SORT = Object.freeze({
  queues: Object.freeze({ key: "util", descending: true }),
  hotspot: Object.freeze({ key: "down", descending: true }),
  interfaces: Object.freeze({ key: "rate", descending: true }),
});

const nonNegative = (value) => (value < 0 ? null : value);

/** The default direction for a key: names A to Z, figures largest first. */
export function defaultDescending(key) {
  return key !== "name";
}

/**
 * The sort after a click on column `key`: the same column again reverses it, another column
 * starts in its default direction.
 */
export function nextSort(current, key) {
  if (current?.key === key) return { key, descending: !current.descending };
  return { key, descending: defaultDescending(key) };
}

/** A comparator of rows of `source` for `sort` (`{key, descending}`); ties go by name. */
export function comparator(source, sort) {
  const keys = SORT_KEYS[source] ?? SORT_KEYS.interfaces;
  const value = keys[sort?.key] ?? keys.name;
  const sign = sort?.descending ? -1 : 1;
  return (a, b) => {
    const x = value(a);
    const y = value(b);
    if (x !== y) {
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      const order = typeof x === "string" ? compareNames(x, y) : x - y;
      if (order !== 0) return sign * order;
    }
    return compareNames(a.name, b.name) || compareNames(a.id ?? "", b.id ?? "");
  };
}

/**
 * The rows a table shows: `rows` (a frame's rows of `source`) narrowed by `query` (name,
 * comment and the other fields of `searchText`, case-insensitive), sorted by `sort`, at most
 * `limit` of them. Returns `{rows, matched, total}`: the rows to draw, how many matched the
 * search, how many there were.
 */
export function tableRows(rows, { source, query = "", sort = null, limit = TABLE_LIMIT }) {
  const wanted = query.trim();
  const kept = rows.filter((row) => matches(row, wanted, source));
  kept.sort(comparator(source, sort ?? DEFAULT_SORT[source] ?? DEFAULT_SORT.interfaces));
  return { rows: kept.slice(0, limit), matched: kept.length, total: rows.length };
}

/** The first `count` names in the default order of a source's table: what a view charts first. */
export function topNames(rows, source, count) {
  const sort = DEFAULT_SORT[source] ?? DEFAULT_SORT.interfaces;
  return [...rows]
    .filter((row) => row.type !== "loopback" && totalRate(row, source) >= 0)
    .sort(comparator(source, sort))
    .slice(0, count)
    .map((row) => row.name);
}
