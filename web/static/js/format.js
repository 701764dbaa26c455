/**
 * Human units for rates, times and durations. Pure functions; no DOM.
 *
 * Rates use decimal SI prefixes, as network equipment does (1 Mbps = 1,000,000 bit/s), with
 * three significant digits: dense tables stay aligned and nothing pretends to more precision
 * than a one-second counter delta has.
 */

const RATE_UNITS = [
  [1e9, "Gbps"],
  [1e6, "Mbps"],
  [1e3, "kbps"],
];

/** `12345678` -> `"12.3 Mbps"`; `null` (rate not defined this tick) -> `"–"`. */
export function formatBps(bps) {
  if (bps === null || bps === undefined || !Number.isFinite(bps)) return "–";
  const abs = Math.abs(bps);
  for (const [scale, unit] of RATE_UNITS) {
    // Round first, so 999,950 bit/s reads "1.00 Mbps", not "1000 kbps".
    if (abs >= scale * 0.9995) return `${threeDigits(bps / scale)} ${unit}`;
  }
  return `${Math.round(bps)} bps`;
}

/** Axis labels: like formatBps but without trailing zeros ("100 Mbps", "1.5 Gbps"). */
export function formatBpsShort(bps) {
  if (bps === 0) return "0";
  const text = formatBps(bps);
  return text.replace(/\.0+ /, " ").replace(/(\.\d*?)0+ /, "$1 ");
}

function threeDigits(value) {
  const abs = Math.abs(value);
  if (abs >= 99.95) return value.toFixed(0);
  if (abs >= 9.995) return value.toFixed(1);
  return value.toFixed(2);
}

const pad = (n) => String(n).padStart(2, "0");

/** Unix seconds -> local `"14:03:07"` (24-hour, as NOC screens read). */
export function formatClock(ts) {
  const d = new Date(ts * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Unix seconds -> local `"14:03"`. */
export function formatClockShort(ts) {
  const d = new Date(ts * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Seconds -> `"45 s"`, `"3 min 20 s"`, `"2 h 5 min"`, `"3 d 4 h"` (a session's uptime). */
export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** Natural order for interface names: ether2 before ether10, <pppoe-a> among the pppoe's. */
export const compareNames = new Intl.Collator("en", { numeric: true, sensitivity: "base" })
  .compare;

/**
 * A queue's plan (`max-limit`, bits/s; null for unlimited) as `"10 Mbps / 50 Mbps"` (up /
 * down), `"unlimited"` when both are, `"unlimited / 50 Mbps"` when one is.
 */
export function formatPlan(up, down) {
  const one = (bps) => (bps === null || bps === undefined ? "unlimited" : formatBpsShort(bps));
  if ((up ?? null) === null && (down ?? null) === null) return "unlimited";
  return `${one(up)} / ${one(down)}`;
}

/** `12.34` -> `"12 %"`, `0.4` -> `"0.4 %"`; null -> `"–"`. One decimal below 10 %. */
export function formatPercent(percent) {
  if (percent === null || percent === undefined || !Number.isFinite(percent)) return "–";
  const abs = Math.abs(percent);
  return `${abs < 9.95 && abs !== 0 ? percent.toFixed(1) : Math.round(percent)} %`;
}

/** A MAC address as the router wrote it, or `"–"`. */
export function formatText(text) {
  return typeof text === "string" && text !== "" ? text : "–";
}
