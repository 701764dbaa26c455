import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { exactName, Feed } from "../static/js/feed.js";

/** A traffic frame as the gateway sends it; rates derived from `seq` so values are checkable. */
function frame(router, seq, names, { ts = 1000 + seq, interval = 1 } = {}) {
  return {
    type: "traffic",
    v: 1,
    router,
    seq,
    ts,
    interval,
    stale: false,
    interfaces: names.map((name, i) => ({
      id: `*${i + 1}`,
      name,
      type: name.startsWith("<pppoe") ? "pppoe-in" : "ether",
      running: true,
      disabled: false,
      rx_bps: seq * 1000 + i,
      tx_bps: seq * 100 + i,
      rx_pps: 1,
      tx_pps: 1,
    })),
  };
}

const ALL = ["ether1", "ether2", "sfp1", "<pppoe-a>", "<pppoe-b>"];
const status = (router, state = "up") => ({
  type: "status",
  router,
  state,
  error: null,
  since: 999,
});
const history = (router, frames, reset = false) => ({ type: "history", router, reset, frames });
/** The `interfaces` of a chart step: every charted name, matched exactly. */
const exact = (...names) => names.map(exactName);
const only = (f, names) => ({
  ...f,
  interfaces: f.interfaces.filter((i) => names.includes(i.name)),
});

function harness() {
  const sent = [];
  let connected = true;
  const feed = new Feed({ send: (m) => connected && (sent.push(m), true), now: () => 5_000_000 });
  const take = () => sent.splice(0);
  return {
    feed,
    take,
    disconnect: () => {
      connected = false;
      feed.closed();
    },
    connect: () => {
      connected = true;
      feed.opened();
    },
  };
}

/** The server's answers to a chart step (filtered ring) then a full step (frames after since). */
function serve(h, router, ring, { reset = false } = {}) {
  const out = h.take();
  for (const message of out) {
    if (message.type !== "subscribe") continue;
    h.feed.handle(status(router));
    if (message.interfaces) {
      const names = message.interfaces.map((entry) => entry.exact);
      h.feed.handle(history(router, ring.map((f) => only(f, names))));
    } else {
      const since = message.since ?? -1;
      h.feed.handle(history(router, ring.filter((f) => f.seq > since), reset));
    }
  }
  return out;
}

describe("subscription steps", () => {
  test("chart step filtered to the charted names, then full step from the latest frame", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", ["ether1", "sfp1"]);
    const ring = [1, 2, 3, 4].map((seq) => frame("r1", seq, ALL));
    assert.deepEqual(h.take(), [
      { type: "subscribe", router: "r1", interfaces: exact("ether1", "sfp1") },
    ]);
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", ring.map((f) => only(f, ["ether1", "sfp1"]))));
    assert.deepEqual(h.take(), [{ type: "subscribe", router: "r1", since: 3 }]);
    const feed = h.feed.routers.get("r1");
    assert.equal(feed.latest, null, "no unfiltered frame yet");
    h.feed.handle(history("r1", ring.slice(3)));
    assert.equal(feed.filter, "all");
    assert.equal(feed.latest.seq, 4);
    assert.equal(feed.latest.interfaces.length, ALL.length);
    assert.equal(feed.series.points.length, 4);
    assert.deepEqual([...feed.series.points[0].rates.keys()], ["ether1", "sfp1"]);
    assert.deepEqual(h.take(), []);
  });

  test("no charted names yet: the chart step asks for none, still learning the ring's seqs", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", []);
    const ring = [5, 6, 7].map((seq) => frame("r1", seq, ALL));
    assert.deepEqual(serve(h, "r1", ring), [{ type: "subscribe", router: "r1", interfaces: exact() }]);
    assert.deepEqual(serve(h, "r1", ring), [{ type: "subscribe", router: "r1", since: 6 }]);
    assert.equal(h.feed.routers.get("r1").latest.seq, 7);
  });

  test("charted names are asked for as exact names, glob characters and all", () => {
    const h = harness();
    h.feed.opened();
    const names = ["ether1 [WAN]", "a*b?", "<pppoe-x>"];
    h.feed.want("r1", names);
    const ring = [1, 2, 3].map((seq) => frame("r1", seq, [...names, "ether1 W", "aXbY"]));
    assert.deepEqual(serve(h, "r1", ring), [
      {
        type: "subscribe",
        router: "r1",
        interfaces: [{ exact: "ether1 [WAN]" }, { exact: "a*b?" }, { exact: "<pppoe-x>" }],
      },
    ]);
    const feed = h.feed.routers.get("r1");
    assert.equal(feed.series.points.length, 3, "the window starts with the ring's history");
    for (const point of feed.series.points) assert.deepEqual([...point.rates.keys()], names);
  });

  test("an empty ring resumes the full step from 0", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", ["ether1"]);
    serve(h, "r1", []);
    assert.deepEqual(h.take(), [{ type: "subscribe", router: "r1", since: 0 }]);
  });

  test("live frames during the chart step do not replace the top talkers", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", ["ether1"]);
    const ring = [1, 2].map((seq) => frame("r1", seq, ALL));
    serve(h, "r1", ring); // chart step answered; full step sent
    h.feed.handle(only(frame("r1", 3, ALL), ["ether1"])); // still filtered on the server
    const feed = h.feed.routers.get("r1");
    assert.equal(feed.latest, null);
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", [frame("r1", 2, ALL), frame("r1", 3, ALL)]));
    h.feed.handle(frame("r1", 4, ALL));
    assert.equal(feed.latest.seq, 4);
    assert.deepEqual(
      feed.series.points.map((p) => p.seq),
      [1, 2, 3, 4],
    );
  });

  test("charting one more name backfills only that name and keeps the others gap-free", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", ["ether1"]);
    const ring = [1, 2, 3].map((seq) => frame("r1", seq, ALL));
    serve(h, "r1", ring);
    serve(h, "r1", ring);
    const feed = h.feed.routers.get("r1");
    h.feed.want("r1", ["ether1", "<pppoe-a>"]);
    assert.deepEqual(h.take(), [
      { type: "subscribe", router: "r1", interfaces: exact("<pppoe-a>") },
    ]);
    ring.push(frame("r1", 4, ALL));
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", ring.map((f) => only(f, ["<pppoe-a>"]))));
    // A live frame under the narrow filter, then the full step resumes after the last full frame.
    ring.push(frame("r1", 5, ALL));
    h.feed.handle(only(ring[4], ["<pppoe-a>"]));
    assert.deepEqual(h.take(), [{ type: "subscribe", router: "r1", since: 3 }]);
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", ring.slice(3)));
    for (const point of feed.series.points) {
      assert.ok(point.rates.has("ether1"), `ether1 at seq ${point.seq}`);
      assert.ok(point.rates.has("<pppoe-a>"), `<pppoe-a> at seq ${point.seq}`);
    }
    assert.equal(feed.series.points.length, 5);
  });

  test("stopping unsubscribes; starting backfills the pause from history", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", ["ether1"]);
    const ring = [1, 2].map((seq) => frame("r1", seq, ALL));
    serve(h, "r1", ring);
    serve(h, "r1", ring);
    h.feed.want("r1", null);
    assert.deepEqual(h.take(), [{ type: "unsubscribe", router: "r1" }]);
    h.feed.handle(frame("r1", 3, ALL)); // already in flight: ignored
    const feed = h.feed.routers.get("r1");
    assert.equal(feed.series.points.length, 2);
    for (let seq = 3; seq <= 9; seq++) ring.push(frame("r1", seq, ALL));
    h.feed.want("r1", ["ether1"]);
    assert.deepEqual(serve(h, "r1", ring), [
      { type: "subscribe", router: "r1", interfaces: exact("ether1") },
    ]);
    assert.deepEqual(serve(h, "r1", ring), [{ type: "subscribe", router: "r1", since: 8 }]);
    assert.deepEqual(
      feed.series.points.map((p) => p.seq),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  });

  test("unsubscribing waits for pending answers", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", ["ether1"]);
    h.take();
    h.feed.want("r1", null);
    assert.deepEqual(h.take(), []);
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", []));
    assert.deepEqual(h.take(), [{ type: "unsubscribe", router: "r1" }]);
  });

  test("answers are matched to subscribes across routers in order", () => {
    const h = harness();
    h.feed.want("a", ["ether1"]);
    h.feed.want("b", ["ether2"]);
    h.feed.opened();
    assert.deepEqual(
      h.take().map((m) => m.router),
      ["a", "b"],
    );
    h.feed.handle(status("a"));
    h.feed.handle(history("a", [only(frame("a", 1, ALL), ["ether1"])]));
    h.feed.handle(status("b"));
    h.feed.handle(history("b", [only(frame("b", 7, ALL), ["ether2"])]));
    assert.deepEqual(h.take(), [
      { type: "subscribe", router: "a", since: 0 },
      { type: "subscribe", router: "b", since: 6 },
    ]);
  });

  test("an error answer marks the router refused and stops asking", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("nope", []);
    h.take();
    h.feed.handle({ type: "error", code: "unknown_router", message: "no router with id 'nope'" });
    const feed = h.feed.routers.get("nope");
    assert.equal(feed.refused.code, "unknown_router");
    assert.equal(feed.subscribed, false);
    assert.deepEqual(h.take(), []);
  });
});

describe("reconnects and restarts", () => {
  test("a restarted gateway's history (seq from 1, reset) merges without gap or duplicate", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", ["ether1"]);
    const before = [1, 2, 3, 4, 5].map((seq) => frame("r1", seq, ALL));
    serve(h, "r1", before);
    serve(h, "r1", before);
    const feed = h.feed.routers.get("r1");
    h.disconnect();
    // The new process polled while this page was away: its seqs start at 1, its times go on.
    const after = [1, 2, 3].map((seq) => frame("r1", seq, ALL, { ts: 1010 + seq }));
    h.connect();
    assert.deepEqual(h.take(), [{ type: "subscribe", router: "r1", interfaces: exact("ether1") }]);
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", after.map((f) => only(f, ["ether1"]))));
    // The full step resumes from the new process's seqs, never from the old ones.
    assert.deepEqual(h.take(), [{ type: "subscribe", router: "r1", since: 2 }]);
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", after.slice(2)));
    h.feed.handle(frame("r1", 4, ALL, { ts: 1014 }));
    const times = feed.series.points.map((p) => p.ts);
    assert.deepEqual(times, [1001, 1002, 1003, 1004, 1005, 1011, 1012, 1013, 1014]);
    assert.equal(feed.latest.seq, 4);
    assert.equal(feed.latest.ts, 1014);
  });

  test("a reset history whose frames overlap what is stored adds nothing twice", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", ["ether1"]);
    const ring = [1, 2, 3].map((seq) => frame("r1", seq, ALL));
    serve(h, "r1", ring);
    serve(h, "r1", ring, { reset: true });
    h.feed.handle(frame("r1", 3, ALL)); // the same poll again
    assert.equal(h.feed.routers.get("r1").series.points.length, 3);
  });

  test("nothing is sent while disconnected; everything wanted is resubscribed on open", () => {
    const h = harness();
    h.disconnect();
    h.feed.want("r1", ["ether1"]);
    h.feed.want("r2", null);
    assert.deepEqual(h.take(), []);
    h.connect();
    assert.deepEqual(h.take(), [{ type: "subscribe", router: "r1", interfaces: exact("ether1") }]);
  });

  test("hello lists the routers", () => {
    const kinds = [];
    const feed = new Feed({ send: () => true, onChange: (kind) => kinds.push(kind) });
    feed.handle({ type: "hello", v: 1, routers: [{ id: "a", name: "A" }], heartbeat: 20 });
    assert.deepEqual(feed.routerList, [{ id: "a", name: "A" }]);
    assert.equal(feed.heartbeat, 20);
    assert.deepEqual(kinds, ["hello"]);
  });
});
