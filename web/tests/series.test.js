import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { busiest, byRate, Series } from "../static/js/series.js";

const point = (seq, ts, rates, interval = 1) => ({
  seq,
  ts,
  interval,
  interfaces: Object.entries(rates).map(([name, [rx, tx]], i) => ({
    id: `*${i}`,
    name,
    type: name === "lo" ? "loopback" : "ether",
    running: true,
    disabled: false,
    rx_bps: rx,
    tx_bps: tx,
  })),
});

describe("Series", () => {
  test("keeps points in time order and merges a frame seen twice", () => {
    const s = new Series();
    s.add(point(2, 102, { a: [2, 20] }));
    s.add(point(1, 101, { a: [1, 10] }));
    s.add(point(3, 103, { a: [3, 30] }));
    s.add(point(2, 102, { b: [5, 50] }));
    assert.deepEqual(
      s.points.map((p) => p.ts),
      [101, 102, 103],
    );
    assert.deepEqual([...s.points[1].rates], [
      ["a", [2, 20]],
      ["b", [5, 50]],
    ]);
  });

  test("records only the names asked for, and forgets names no longer charted", () => {
    const s = new Series();
    s.add(point(1, 101, { a: [1, 1], b: [2, 2], c: [3, 3] }), new Set(["a", "c"]));
    assert.deepEqual([...s.points[0].rates.keys()], ["a", "c"]);
    s.retain(new Set(["c"]));
    assert.deepEqual([...s.points[0].rates.keys()], ["c"]);
  });

  test("drops points older than it keeps", () => {
    const s = new Series(60);
    for (let t = 0; t <= 120; t += 10) s.add(point(t, 1000 + t, { a: [t, t] }));
    assert.equal(s.first.ts, 1060);
    assert.equal(s.last.ts, 1120);
    assert.equal(s.add(point(0, 1000, { a: [0, 0] })), false);
  });

  test("columns break the line across a hole of more than 2.5 intervals", () => {
    const s = new Series();
    for (const t of [100, 101, 102, 110, 111]) s.add(point(t, t, { a: [t, -t] }));
    const [xs, rx, tx] = s.columns(["a"], 0);
    assert.deepEqual(xs, [100, 101, 102, 103, 110, 111]);
    assert.deepEqual(rx, [100, 101, 102, null, 110, 111]);
    assert.deepEqual(tx, [-100, -101, -102, null, -110, -111]);
  });

  test("columns start at the window's left edge and show a missing name as null", () => {
    const s = new Series();
    s.add(point(1, 100, { a: [1, 1] }));
    s.add(point(2, 101, { a: [2, 2], b: [7, 8] }));
    s.add(point(3, 102, { a: [3, 3], b: [9, 10] }));
    assert.deepEqual(s.columns(["b", "a"], 101), [
      [101, 102],
      [7, 9],
      [8, 10],
      [2, 3],
      [2, 3],
    ]);
    assert.deepEqual(s.columns(["b"], 0)[1], [null, 7, 9]);
  });

  test("stats: now, average and peak over the window, skipping undefined rates", () => {
    const s = new Series();
    s.add(point(1, 100, { a: [10, 1] }));
    s.add(point(2, 101, { a: [30, null] }));
    s.add(point(3, 102, { a: [20, 3] }));
    assert.deepEqual(s.stats("a", 0), {
      rx: { now: 20, avg: 20, peak: 30 },
      tx: { now: 3, avg: 2, peak: 3 },
    });
    assert.deepEqual(s.stats("a", 101).rx, { now: 20, avg: 25, peak: 30 });
    assert.equal(s.stats("nope", 0), null);
    s.add(point(4, 103, { b: [1, 1] })); // a point without "a" changes none of its figures
    assert.deepEqual(s.stats("a", 0).rx, { now: 20, avg: 20, peak: 30 });
    s.add(point(5, 104, { a: [null, null] }));
    assert.deepEqual(s.stats("a", 104), {
      rx: { now: null, avg: null, peak: null },
      tx: { now: null, avg: null, peak: null },
    });
  });
});

describe("busiest", () => {
  test("picks the top interfaces by rx + tx, skipping loopback and undefined rates", () => {
    const f = point(1, 1, {
      lo: [9e9, 9e9],
      ether1: [5e6, 5e6],
      ether2: [1e6, 0],
      ether3: [null, null],
      sfp1: [8e8, 1e8],
      ether4: [0, 0],
    });
    assert.deepEqual(busiest(f, 3), ["sfp1", "ether1", "ether2"]);
    assert.deepEqual(busiest(f, 10), ["sfp1", "ether1", "ether2", "ether4"]);
    assert.deepEqual(
      byRate(f).map((i) => i.name),
      ["lo", "sfp1", "ether1", "ether2", "ether4", "ether3"],
    );
  });

  test("a first poll (every rate null) picks nothing yet", () => {
    assert.deepEqual(busiest(point(1, 1, { ether1: [null, null] })), []);
    assert.deepEqual(busiest(null), []);
  });
});

describe("Series of queues", () => {
  const queues = (seq, ts, rows) => ({
    seq,
    ts,
    interval: 1,
    source: "queues",
    queues: Object.entries(rows).map(([name, [up, down, maxUp, maxDown]]) => ({
      name,
      up_bps: up,
      down_bps: down,
      max_up_bps: maxUp,
      max_down_bps: maxDown,
    })),
  });

  test("records up, down and the plan, charts the plan as lines beside the rates", () => {
    const s = new Series(undefined, "queues");
    s.add(queues(1, 100, { a: [1e6, 5e6, 10e6, 50e6], b: [1, 2, null, null] }));
    s.add(queues(2, 101, { a: [2e6, 6e6, 20e6, 100e6] })); // a plan upgrade
    assert.deepEqual(s.columns(["a"], 0, { plan: true }), [
      [100, 101],
      [1e6, 2e6],
      [5e6, 6e6],
      [10e6, 20e6],
      [50e6, 100e6],
    ]);
    assert.deepEqual(s.columns(["b"], 0, { plan: true }).slice(1), [
      [1, null],
      [2, null],
      [null, null],
      [null, null],
    ]);
    assert.deepEqual(s.stats("a", 0), {
      up: { now: 2e6, avg: 1.5e6, peak: 2e6 },
      down: { now: 6e6, avg: 5.5e6, peak: 6e6 },
    });
    assert.deepEqual(s.plan("a"), [20e6, 100e6]);
    assert.deepEqual(s.plan("b"), [null, null]);
    assert.deepEqual(s.plan("nope"), [null, null]);
  });

  test("an interfaces frame holds no queue rows", () => {
    const s = new Series(undefined, "queues");
    s.add({ seq: 1, ts: 1, interval: 1, interfaces: [{ name: "a", rx_bps: 1, tx_bps: 1 }] });
    assert.deepEqual([...s.points[0].rates.keys()], []);
  });
});
