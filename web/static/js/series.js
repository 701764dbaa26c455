/**
 * One source of one router over time (its interfaces, queues or hotspot users), for the rows
 * being charted. Pure data; no DOM, no I/O.
 *
 * Points are keyed by the frame's `ts` (Unix seconds of the poll), not by `seq`: a restarted
 * gateway starts `seq` at 1 again, but never repeats a poll time, so frames from before and
 * after a restart interleave correctly and the same frame received twice (from a history
 * backfill and live, or filtered and unfiltered) merges into one point instead of two.
 */

import { DEFAULT_SOURCE, rowsOf, SOURCE_INFO, sampleOf, totalRate } from "./sources.js";

export { totalRate };

/** Seconds of data kept: the longest window (15 min) plus a margin for the chart's left edge. */
export const KEEP_SECONDS = 15 * 60 + 30;

/** A hole longer than this many poll intervals is drawn as a gap, not a straight line. */
export const GAP_INTERVALS = 2.5;

export class Series {
  constructor(keepSeconds = KEEP_SECONDS, source = DEFAULT_SOURCE) {
    this.keepSeconds = keepSeconds;
    this.source = source;
    /**
     * Sorted by ts: `{ts, seq, interval, rates: Map<name, sample>}`, a sample being the row's
     * two rates in bits/s (`[rx, tx]`, or `[up, down]`), for a queue followed by its plan
     * (`[up, down, max_up, max_down]`, a plan null when unlimited): a plan that changes shows
     * as a step in its line.
     */
    this.points = [];
  }

  /**
   * Merge one traffic frame, keeping only the rows named in `names` (a Set; null keeps all).
   * Returns true when a new point was added (false when it merged into an existing one).
   */
  add(frame, names = null) {
    const rates = new Map();
    for (const row of rowsOf(frame, this.source)) {
      if (names === null || names.has(row.name)) rates.set(row.name, sampleOf(row, this.source));
    }
    const points = this.points;
    const last = points[points.length - 1];
    // Live frames arrive in order: append without searching.
    if (last === undefined || frame.ts > last.ts) {
      points.push({ ts: frame.ts, seq: frame.seq, interval: frame.interval, rates });
      this._trim(frame.ts);
      return true;
    }
    const at = this._search(frame.ts);
    const existing = points[at];
    if (existing !== undefined && existing.ts === frame.ts) {
      for (const [name, value] of rates) existing.rates.set(name, value);
      return false;
    }
    if (frame.ts < last.ts - this.keepSeconds) return false; // older than anything shown
    points.splice(at, 0, { ts: frame.ts, seq: frame.seq, interval: frame.interval, rates });
    return true;
  }

  /** Forget everything recorded for rows outside `names`. */
  retain(names) {
    for (const point of this.points) {
      for (const name of point.rates.keys()) if (!names.has(name)) point.rates.delete(name);
    }
  }

  get first() {
    return this.points[0] ?? null;
  }

  get last() {
    return this.points[this.points.length - 1] ?? null;
  }

  /** Index of the first point with ts >= `ts`. */
  _search(ts) {
    let lo = 0;
    let hi = this.points.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.points[mid].ts < ts) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  _trim(latest) {
    const cut = this._search(latest - this.keepSeconds);
    if (cut > 0) this.points.splice(0, cut);
  }

  /**
   * Chart columns from `from` (Unix seconds) on, for uPlot: `[xs, rx(n0), tx(n0), rx(n1), ...]`
   * (up and down for queues and hotspot users); with `plan`, each name's two rates are followed
   * by its plan's two columns (`[xs, up(n0), down(n0), max_up(n0), max_down(n0), up(n1), ...]`).
   * A hole longer than GAP_INTERVALS poll intervals gets one null row, so the line breaks
   * there instead of bridging an outage with a straight segment.
   */
  columns(names, from, { plan = false } = {}) {
    const width = plan ? 4 : 2;
    const xs = [];
    const ys = names.flatMap(() => Array.from({ length: width }, () => []));
    let previous = null;
    for (let i = this._search(from); i < this.points.length; i++) {
      const point = this.points[i];
      if (previous !== null && point.ts - previous.ts > GAP_INTERVALS * point.interval) {
        xs.push(previous.ts + point.interval);
        for (const column of ys) column.push(null);
      }
      xs.push(point.ts);
      names.forEach((name, k) => {
        const rate = point.rates.get(name);
        for (let d = 0; d < width; d++) ys[width * k + d].push(rate?.[d] ?? null);
      });
      previous = point;
    }
    return [xs, ...ys];
  }

  /**
   * Current, average and peak of `name`'s two rates from `from` on, keyed by the source's
   * direction names: `{rx: {now, avg, peak}, tx: {now, avg, peak}}` (`up`/`down` for queues and
   * hotspot users); a figure is null when no rate exists.
   * "now" is the rate at the latest point that has `name`, even when that is null (a counter
   * reset this tick); whether the interface still exists is the caller's to judge.
   */
  stats(name, from) {
    const acc = [
      { sum: 0, n: 0, peak: null, now: null },
      { sum: 0, n: 0, peak: null, now: null },
    ];
    let seen = false;
    for (let i = this._search(from); i < this.points.length; i++) {
      const rate = this.points[i].rates.get(name);
      if (rate === undefined) continue;
      seen = true;
      for (let d = 0; d < 2; d++) {
        const value = rate[d];
        acc[d].now = value;
        if (value === null || value === undefined) continue;
        acc[d].sum += value;
        acc[d].n += 1;
        acc[d].peak = acc[d].peak === null ? value : Math.max(acc[d].peak, value);
      }
    }
    const figures = ({ sum, n, peak, now }) => ({ now, avg: n ? sum / n : null, peak });
    if (!seen) return null;
    const [first, second] = SOURCE_INFO[this.source]?.dirs ?? SOURCE_INFO[DEFAULT_SOURCE].dirs;
    return { [first]: figures(acc[0]), [second]: figures(acc[1]) };
  }

  /** `name`'s latest plan in this series, `[up, down]` bits/s (null: unlimited or unknown). */
  plan(name) {
    for (let i = this.points.length - 1; i >= 0; i--) {
      const sample = this.points[i].rates.get(name);
      if (sample !== undefined && sample.length >= 4) return [sample[2], sample[3]];
    }
    return [null, null];
  }
}

/** A frame's rows of `source`, busiest (highest total rate) first. */
export function byRate(frame, source = DEFAULT_SOURCE) {
  return [...rowsOf(frame, source)].sort((a, b) => totalRate(b, source) - totalRate(a, source));
}

/**
 * The `count` busiest rows of a frame that a newcomer would want charted first: by current
 * total rate, skipping loopback and rows with no rate yet. Empty when no row has a rate (the
 * first poll): wait for the next frame.
 */
export function busiest(frame, count = 3, source = DEFAULT_SOURCE) {
  return byRate(frame, source)
    .filter((row) => row.type !== "loopback" && totalRate(row, source) >= 0)
    .slice(0, count)
    .map((row) => row.name);
}
