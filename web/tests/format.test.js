import assert from "node:assert/strict";
import { test } from "node:test";

import {
  compareNames,
  formatBps,
  formatBpsShort,
  formatClock,
  formatDuration,
} from "../static/js/format.js";

test("rates get decimal units with three significant digits", () => {
  const cases = [
    [0, "0 bps"],
    [999, "999 bps"],
    [1000, "1.00 kbps"],
    [1234, "1.23 kbps"],
    [12345, "12.3 kbps"],
    [123456, "123 kbps"],
    [999_950, "1.00 Mbps"],
    [12_345_678, "12.3 Mbps"],
    [100_000_000, "100 Mbps"],
    [1_500_000_000, "1.50 Gbps"],
    [40_000_000_000, "40.0 Gbps"],
    [400_000_000_000, "400 Gbps"],
  ];
  for (const [bps, text] of cases) assert.equal(formatBps(bps), text, `${bps}`);
});

test("an undefined rate reads as a dash, never as zero", () => {
  assert.equal(formatBps(null), "–");
  assert.equal(formatBps(undefined), "–");
  assert.equal(formatBps(Number.NaN), "–");
});

test("axis labels drop trailing zeros", () => {
  assert.equal(formatBpsShort(0), "0");
  assert.equal(formatBpsShort(500_000_000), "500 Mbps");
  assert.equal(formatBpsShort(1_500_000_000), "1.5 Gbps");
  assert.equal(formatBpsShort(2_000_000_000), "2 Gbps");
  assert.equal(formatBpsShort(12_000_000), "12 Mbps");
  assert.equal(formatBpsShort(1_250_000_000), "1.25 Gbps");
});

test("clock times are 24-hour local time", () => {
  const ts = new Date(2024, 0, 2, 14, 3, 7).getTime() / 1000;
  assert.equal(formatClock(ts), "14:03:07");
});

test("durations read naturally", () => {
  assert.equal(formatDuration(0.4), "0 s");
  assert.equal(formatDuration(45), "45 s");
  assert.equal(formatDuration(60), "1 min");
  assert.equal(formatDuration(200), "3 min 20 s");
  assert.equal(formatDuration(7500), "2 h 5 min");
});

test("interface names sort naturally", () => {
  const names = ["ether10", "ether2", "<pppoe-b>", "ether1", "<pppoe-a>", "bridge"];
  assert.deepEqual(names.sort(compareNames), [
    "<pppoe-a>",
    "<pppoe-b>",
    "bridge",
    "ether1",
    "ether2",
    "ether10",
  ]);
});

test("a session's uptime of days reads in days and hours", () => {
  assert.equal(formatDuration(86400), "1 d");
  assert.equal(formatDuration(3 * 86400 + 4 * 3600 + 59), "3 d 4 h");
});
