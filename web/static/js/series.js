/**
 * One router's traffic over time, for the interfaces being charted. Pure data; no DOM, no I/O.
 *
 * Points are keyed by the frame's `ts` (Unix seconds of the poll), not by `seq`: a restarted
 * gateway starts `seq` at 1 again, but never repeats a poll time, so frames from before and
 * after a restart interleave correctly and the same frame received twice (from a history
 * backfill and live, or filtered and unfiltered) merges into one point instead of two.
 */

/** Seconds of data kept: the longest window (15 min) plus a margin for the chart's left edge. */
export const KEEP_SECONDS = 15 * 60 + 30;

/** A hole longer than this many poll intervals is drawn as a gap, not a straight line. */
export const GAP_INTERVALS = 2.5;

export class Series {
  constructor(keepSeconds = KEEP_SECONDS) {
    this.keepSeconds = keepSeconds;
    /** Sorted by ts: `{ts, seq, interval, rates: Map<name, [rx_bps, tx_bps]>}`. */
    this.points = [];
  }

  /**
   * Merge one traffic frame, keeping only the interfaces in `names` (a Set; null keeps all).
   * Returns true when a new point was added (false when it merged into an existing one).
   */
  add(frame, names = null) {
    const rates = new Map();
    for (const iface of frame.interfaces ?? []) {
      if (names === null || names.has(iface.name)) {
        rates.set(iface.name, [iface.rx_bps, iface.tx_bps]);
      }
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

  /** Forget everything recorded for interfaces outside `names`. */
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
   * Chart columns from `from` (Unix seconds) on, for uPlot: `[xs, rx(n0), tx(n0), rx(n1), ...]`.
   * A hole longer than GAP_INTERVALS poll intervals gets one null row, so the line breaks
   * there instead of bridging an outage with a straight segment.
   */
  columns(names, from) {
    const xs = [];
    const ys = names.flatMap(() => [[], []]);
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
        ys[2 * k].push(rate ? rate[0] : null);
        ys[2 * k + 1].push(rate ? rate[1] : null);
      });
      previous = point;
    }
    return [xs, ...ys];
  }

  /**
   * Current, average and peak rx/tx of `name` from `from` on:
   * `{rx: {now, avg, peak}, tx: {now, avg, peak}}`; a figure is null when no rate exists.
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
    return seen ? { rx: figures(acc[0]), tx: figures(acc[1]) } : null;
  }
}

/** Total rate of an interface row, for sorting (an undefined rate sorts last). */
export function totalRate(iface) {
  if (iface.rx_bps === null && iface.tx_bps === null) return -1;
  return (iface.rx_bps ?? 0) + (iface.tx_bps ?? 0);
}

/** A frame's interfaces, busiest first. */
export function byRate(frame) {
  return [...(frame?.interfaces ?? [])].sort((a, b) => totalRate(b) - totalRate(a));
}

/**
 * The `count` busiest interfaces of a frame that a newcomer would want charted first: by
 * current rx + tx, skipping loopback and interfaces with no rate yet. Empty when no interface
 * has a rate (the router's first poll): wait for the next frame.
 */
export function busiest(frame, count = 3) {
  return byRate(frame)
    .filter((iface) => iface.type !== "loopback" && totalRate(iface) >= 0)
    .slice(0, count)
    .map((iface) => iface.name);
}
