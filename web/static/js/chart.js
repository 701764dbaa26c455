/**
 * The traffic chart (uPlot): each charted row's two rates, solid and dashed, and for queues
 * the plan as thin dotted lines in the same colour. Used by the dashboard's views and by the
 * customer view. Draws only; the data comes from series.js's `columns()`.
 */

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { formatBps, formatBpsShort, formatClock, formatClockShort } from "./format.js";

export const SERIES_COLOURS = 8; // --series-0 .. --series-7 in dashboard.css

export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/**
 * A chart in `box`. `range()` gives the time axis, `[from, to]` (Unix seconds), at each draw;
 * `onCursor(text)` gets the values under the pointer, in words (null when it leaves).
 */
export class TrafficChart {
  constructor(box, { range, onCursor = () => {}, height = () => 300 }) {
    this.box = box;
    this.range = range;
    this.onCursor = onCursor;
    this.height = height;
    this.plot = null;
    this.key = ""; // what the plot was built for: names, directions, plan, theme
    this.resizer = new ResizeObserver(() => this._resize());
    this.resizer.observe(box);
  }

  destroy() {
    this.resizer.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  /** Theme changed: colours come from CSS, so rebuild on the next draw. */
  restyle() {
    this.key = "";
  }

  /** Whether the pointer is over a point (the caller then leaves the readout alone). */
  get pointing() {
    const idx = this.plot?.cursor.idx;
    return idx !== null && idx !== undefined;
  }

  /**
   * Draw `columns` (`[xs, a(n0), b(n0), (planA(n0), planB(n0)), a(n1), ...]`) for `names`;
   * `dirs` are the two directions' words (`["rx", "tx"]`, `["up", "down"]`), `plan` whether
   * each name has its two plan columns.
   */
  draw({ names, dirs, plan = false, columns }) {
    const theme = document.documentElement.dataset.theme;
    const key = `${names.join("\n")}\n${dirs.join("/")}\n${plan}\n${theme}`;
    if (key !== this.key || this.plot === null) {
      this.plot?.destroy();
      this.plot = this._build(names, dirs, plan);
      this.key = key;
    }
    this.plot.setData(columns);
  }

  _build(names, dirs, plan) {
    const axis = {
      stroke: cssVar("--muted"),
      grid: { stroke: cssVar("--grid"), width: 1 },
      ticks: { stroke: cssVar("--grid"), width: 1, size: 4 },
      font: `11px ${cssVar("--font")}`,
    };
    const [first, second] = dirs;
    const series = [{}];
    names.forEach((name, k) => {
      const colour = cssVar(`--series-${k % SERIES_COLOURS}`);
      const common = { stroke: colour, points: { show: false }, spanGaps: false };
      // A light fill under rx reads well for one or two lines; more fills only muddy each other.
      const fill = names.length <= 2 ? `${colour}1a` : undefined;
      series.push({ ...common, label: `${name} ${first}`, width: 1.5, fill });
      series.push({ ...common, label: `${name} ${second}`, width: 1.25, dash: [5, 3] });
      if (plan) {
        // The plan: thin dotted lines, the ceiling the rates are measured against.
        const line = { ...common, width: 1, dash: [1, 3], spanGaps: true };
        series.push({ ...line, label: `${name} plan ${first}` });
        series.push({ ...line, label: `${name} plan ${second}` });
      }
    });
    const { width, height } = this._size();
    return new uPlot(
      {
        width,
        height,
        series,
        legend: { show: false },
        cursor: { drag: { x: false, y: false }, points: { size: 6 } },
        scales: {
          x: { time: true, range: () => this.range() },
          y: { range: (u, min, max) => [0, max > 0 ? max * 1.12 : 1000] },
        },
        axes: [
          {
            ...axis,
            space: 80, // px between time labels: "14:03:07" needs room to breathe
            values: (u, splits, axisIdx, space, incr) =>
              splits.map((ts) => (incr < 60 ? formatClock(ts) : formatClockShort(ts))),
          },
          { ...axis, size: 72, values: (u, splits) => splits.map(formatBpsShort) },
        ],
        hooks: { setCursor: [(u) => this._cursor(u, names, dirs, plan)] },
      },
      [[], ...series.slice(1).map(() => [])],
      this.box,
    );
  }

  _cursor(u, names, [first, second], plan) {
    const idx = u.cursor.idx;
    if (idx === null || idx === undefined || u.data[0][idx] === undefined) return;
    const width = plan ? 4 : 2;
    const parts = names.map(
      (name, k) =>
        `${name} ${first} ${formatBps(u.data[1 + width * k][idx])} ` +
        `${second} ${formatBps(u.data[2 + width * k][idx])}`,
    );
    this.onCursor(`${formatClock(u.data[0][idx])}: ${parts.join(" · ")}`);
  }

  _size() {
    const width = Math.max(240, Math.floor(this.box.clientWidth));
    return { width, height: this.height() };
  }

  _resize() {
    if (this.plot === null) return;
    const { width, height } = this._size();
    if (width !== this.plot.width || height !== this.plot.height) {
      this.plot.setSize({ width, height });
    }
  }
}
