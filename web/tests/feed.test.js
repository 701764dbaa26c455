import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { DEFAULT_SECONDS, exactName, Feed } from "../static/js/feed.js";

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
/** A history as one message, the way a gateway without `more` sends it. */
const history = (router, frames, reset = false) => ({ type: "history", router, reset, frames });
/** A history in messages of `size` frames, all but the last marked `more`. */
function chunked(router, frames, size, reset = false) {
  const messages = [];
  for (let i = 0; i === 0 || i < frames.length; i += size) {
    const part = frames.slice(i, i + size);
    messages.push({ type: "history", router, reset, more: i + size < frames.length, frames: part });
  }
  return messages;
}
/** The subscribes the page sends: chart step, probe (nothing charted yet), full step. */
const W = DEFAULT_SECONDS;
const chart = (router, names, seconds = W) => ({
  type: "subscribe",
  router,
  interfaces: names.map(exactName),
  history_seconds: seconds,
});
const probe = (router) => ({ type: "subscribe", router, interfaces: [], history: 1 });
const full = (router, since, seconds = W) => ({
  type: "subscribe",
  router,
  since,
  history_seconds: seconds,
});
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

/**
 * The gateway's answers to what the page sent: a chart step (the ring filtered), a full step
 * (frames after since), each limited by `history` / `history_seconds` (counted back from
 * `now`, by default half a second after the newest frame), in messages of `chunk` frames.
 */
function serve(h, router, ring, { reset = false, chunk = Infinity, now = null } = {}) {
  const out = h.take();
  const wall = now ?? (ring.at(-1)?.ts ?? 0) + 0.5;
  for (const message of out) {
    if (message.type !== "subscribe") continue;
    h.feed.handle(status(router));
    let frames = ring;
    if (message.since !== undefined) frames = frames.filter((f) => f.seq > message.since);
    if (message.history !== undefined) frames = frames.slice(frames.length - message.history);
    if (message.history_seconds !== undefined) {
      frames = frames.filter((f) => f.ts >= wall - message.history_seconds);
    }
    const names = message.interfaces?.map((entry) => entry.exact);
    if (names) frames = frames.map((f) => only(f, names));
    for (const part of chunked(router, frames, chunk, message.interfaces ? false : reset)) {
      h.feed.handle(part);
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
    assert.deepEqual(h.take(), [chart("r1", ["ether1", "sfp1"])]);
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", ring.map((f) => only(f, ["ether1", "sfp1"]))));
    assert.deepEqual(h.take(), [full("r1", 3)]);
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

  test("no charted names yet: the chart step asks for the newest frame, learning the seqs", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", []);
    const ring = [5, 6, 7].map((seq) => frame("r1", seq, ALL));
    assert.deepEqual(serve(h, "r1", ring), [probe("r1")]);
    assert.deepEqual(serve(h, "r1", ring), [full("r1", 6)]);
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
        history_seconds: W,
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
    assert.deepEqual(h.take(), [full("r1", 0)]);
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
    assert.deepEqual(h.take(), [chart("r1", ["<pppoe-a>"])]);
    ring.push(frame("r1", 4, ALL));
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", ring.map((f) => only(f, ["<pppoe-a>"]))));
    // A live frame under the narrow filter, then the full step resumes after the last full frame.
    ring.push(frame("r1", 5, ALL));
    h.feed.handle(only(ring[4], ["<pppoe-a>"]));
    assert.deepEqual(h.take(), [full("r1", 3)]);
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
    assert.deepEqual(serve(h, "r1", ring), [chart("r1", ["ether1"])]);
    assert.deepEqual(serve(h, "r1", ring), [full("r1", 8)]);
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
    assert.deepEqual(h.take(), [full("a", 0), full("b", 6)]);
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

  test("a refreshed token that drops a router marks it refused and lists the rest", () => {
    const kinds = [];
    const sent = [];
    const feed = new Feed({ send: (m) => (sent.push(m), true), onChange: (k) => kinds.push(k) });
    feed.opened();
    feed.want("a", []);
    feed.want("b", []);
    feed.handle({
      type: "refreshed",
      exp: 2000000000,
      routers: [{ id: "a", name: "A" }],
      unsubscribed: ["b"],
    });
    assert.deepEqual(feed.routerList, [{ id: "a", name: "A" }]);
    assert.equal(feed.routers.get("b").refused.code, "forbidden");
    assert.equal(feed.routers.get("b").subscribed, false);
    assert.equal(feed.routers.get("a").refused, null);
    assert.ok(kinds.includes("hello"));
  });

  test("an error about the connection, not a subscribe, leaves the subscribes alone", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("a", ["ether1"]);
    h.take();
    h.feed.handle({ type: "error", code: "refresh_refused", message: "wider scope" });
    h.feed.handle({ type: "error", code: "rate_limited", message: "too many messages" });
    h.feed.handle(status("a"));
    h.feed.handle(history("a", [only(frame("a", 1, ALL), ["ether1"])]));
    const feed = h.feed.routers.get("a");
    assert.equal(feed.refused, null);
    assert.deepEqual(h.take(), [full("a", 0)]);
  });
});

describe("history in several messages, and only the window shown", () => {
  test("a history in several messages is one answer, complete with the last message", () => {
    const kinds = [];
    const sent = [];
    const feed = new Feed({
      send: (m) => (sent.push(m), true),
      onChange: (kind) => kinds.push(kind),
    });
    feed.opened();
    feed.want("r1", ["ether1"]);
    assert.deepEqual(sent.splice(0), [chart("r1", ["ether1"])]);
    const ring = [1, 2, 3, 4, 5].map((seq) => frame("r1", seq, ALL));
    const parts = chunked("r1", ring.map((f) => only(f, ["ether1"])), 2);
    assert.deepEqual(
      parts.map((m) => m.more),
      [true, true, false],
    );
    feed.handle(status("r1"));
    const r1 = feed.routers.get("r1");
    for (const part of parts.slice(0, -1)) {
      feed.handle(part);
      // Not answered yet: no next step, no filter, still pending.
      assert.deepEqual(sent, []);
      assert.equal(r1.filter, null);
      assert.equal(r1.pending, 1);
    }
    assert.equal(r1.series.points.length, 4, "the frames so far are recorded already");
    feed.handle(parts.at(-1));
    assert.deepEqual(sent.splice(0), [full("r1", 4)]);
    assert.deepEqual([...r1.filter], ["ether1"]);
    assert.equal(kinds.filter((k) => k === "history").length, 1);
    // The full step's answer in messages of one frame each.
    for (const part of chunked("r1", ring.slice(3), 1)) feed.handle(part);
    assert.equal(r1.filter, "all");
    assert.equal(r1.latest.seq, 5);
    assert.deepEqual(
      r1.series.points.map((p) => p.seq),
      [1, 2, 3, 4, 5],
    );
    assert.equal(kinds.filter((k) => k === "history").length, 2);
    assert.deepEqual(sent, []);
  });

  test("several routers' histories in several messages each go to their own subscribes", () => {
    const h = harness();
    h.feed.want("a", ["ether1"]);
    h.feed.want("b", ["ether2"]);
    h.feed.opened();
    h.take();
    const ringA = [1, 2, 3].map((seq) => only(frame("a", seq, ALL), ["ether1"]));
    const ringB = [7, 8].map((seq) => only(frame("b", seq, ALL), ["ether2"]));
    h.feed.handle(status("a"));
    for (const part of chunked("a", ringA, 1)) h.feed.handle(part);
    h.feed.handle(status("b"));
    for (const part of chunked("b", ringB, 1)) h.feed.handle(part);
    assert.deepEqual(h.take(), [full("a", 2), full("b", 7)]);
    assert.equal(h.feed.routers.get("a").series.points.length, 3);
    assert.equal(h.feed.routers.get("b").series.points.length, 2);
  });

  test("the page asks for its window's history only, and more when the window grows", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", ["ether1"], 60);
    // Ten minutes of frames, one every 10 s.
    const ring = Array.from({ length: 60 }, (_, i) => frame("r1", i + 1, ALL, { ts: 10 * i }));
    assert.deepEqual(serve(h, "r1", ring), [chart("r1", ["ether1"], 60)]);
    const feed = h.feed.routers.get("r1");
    assert.deepEqual(
      feed.series.points.map((p) => p.seq),
      [55, 56, 57, 58, 59, 60],
    );
    assert.deepEqual(serve(h, "r1", ring), [full("r1", 59, 60)]);
    // A narrower window needs nothing new; a wider one backfills the charted names again.
    h.feed.want("r1", ["ether1"], 60);
    assert.deepEqual(h.take(), []);
    h.feed.want("r1", ["ether1"], 900);
    assert.deepEqual(serve(h, "r1", ring), [chart("r1", ["ether1"], 900)]);
    assert.equal(feed.series.points.length, 60);
    assert.deepEqual(serve(h, "r1", ring), [full("r1", 60, 900)]);
    h.feed.want("r1", ["ether1"], 300);
    assert.deepEqual(h.take(), []);
    // A newly charted name gets the window now wanted, the others keep what they have.
    h.feed.want("r1", ["ether1", "sfp1"], 300);
    assert.deepEqual(h.take(), [chart("r1", ["sfp1"], 300)]);
  });

  test("a gateway without `more` still answers each subscribe with its one message", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", ["ether1"]);
    h.take();
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", [only(frame("r1", 1, ALL), ["ether1"])]));
    assert.deepEqual(h.take(), [full("r1", 0)]);
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
    assert.deepEqual(h.take(), [chart("r1", ["ether1"])]);
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", after.map((f) => only(f, ["ether1"]))));
    // The full step resumes from the new process's seqs, never from the old ones.
    assert.deepEqual(h.take(), [full("r1", 2)]);
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
    assert.deepEqual(h.take(), [chart("r1", ["ether1"])]);
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

/** A queues frame as the gateway sends it: rows under `queues`, rates up/down, a plan. */
function queueFrame(router, seq, names, { ts = 1000 + seq } = {}) {
  return {
    type: "traffic",
    v: 1,
    router,
    source: "queues",
    seq,
    ts,
    interval: 1,
    stale: false,
    queues: names.map((name, i) => ({
      id: `*${i + 10}`,
      name,
      target: `10.20.0.${i + 2}/32`,
      comment: `CID-${100000 + i}`,
      dynamic: false,
      disabled: false,
      up_bps: seq * 10 + i,
      down_bps: seq * 100 + i,
      up_pps: 1,
      down_pps: 1,
      max_up_bps: 10_000_000,
      max_down_bps: 50_000_000,
      util_up: 0,
      util_down: 0,
    })),
  };
}
const QUEUES = ["cust0001", "cust0002", "<pppoe-a>"];
const sourced = (message, source) => ({ ...message, source });

describe("sources: queues and hotspot users beside interfaces", () => {
  test("a queues topic names its source, filters with names, and keeps its own data", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", ["ether1"]);
    h.feed.want("r1", ["cust0002"], 60, "queues");
    assert.deepEqual(h.take(), [
      chart("r1", ["ether1"]),
      {
        type: "subscribe",
        router: "r1",
        source: "queues",
        names: [{ exact: "cust0002" }],
        history_seconds: 60,
      },
    ]);
    const queues = h.feed.get("r1", "queues");
    const interfaces = h.feed.get("r1");
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", [only(frame("r1", 1, ALL), ["ether1"])]));
    h.feed.handle(sourced(status("r1", "down"), "queues"));
    const answer = queueFrame("r1", 7, ["cust0002"]);
    h.feed.handle(sourced(history("r1", [answer]), "queues"));
    assert.deepEqual(h.take(), [
      full("r1", 0),
      { type: "subscribe", router: "r1", source: "queues", since: 6, history_seconds: 60 },
    ]);
    assert.equal(interfaces.status.state, "up");
    assert.equal(queues.status.state, "down");
    h.feed.handle(sourced(history("r1", [queueFrame("r1", 7, QUEUES)]), "queues"));
    h.feed.handle(queueFrame("r1", 8, QUEUES));
    assert.equal(queues.latest.seq, 8);
    assert.deepEqual(queues.names(), QUEUES);
    assert.equal(interfaces.latest, null, "a queue frame is not an interface frame");
    // The chart keeps the charted queue's rates and plan, and nothing of the others.
    assert.deepEqual(
      queues.series.points.map((p) => [p.seq, ...p.rates.keys()]),
      [
        [7, "cust0002"],
        [8, "cust0002"],
      ],
    );
    assert.deepEqual(queues.series.points[1].rates.get("cust0002"), [81, 801, 10e6, 50e6]);
  });

  test("unsubscribing interfaces names the source only while another source is subscribed", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", []);
    h.feed.want("r1", [], 300, "hotspot");
    h.take();
    h.feed.want("r1", null);
    h.feed.want("r1", null, 300, "hotspot");
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", []));
    h.feed.handle(sourced(status("r1"), "hotspot"));
    h.feed.handle(sourced(history("r1", []), "hotspot"));
    assert.deepEqual(h.take(), [
      { type: "unsubscribe", router: "r1", source: "interfaces" },
      { type: "unsubscribe", router: "r1", source: "hotspot" },
    ]);
    h.feed.want("r1", []);
    serve(h, "r1", [frame("r1", 1, ALL)]);
    serve(h, "r1", [frame("r1", 1, ALL)]);
    h.feed.want("r1", null);
    assert.deepEqual(h.take(), [{ type: "unsubscribe", router: "r1" }]);
  });

  test("a source the router does not serve is refused for that source alone", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", [], 300, "hotspot");
    h.feed.want("r1", []);
    h.take();
    h.feed.handle({
      type: "error",
      code: "bad_request",
      message: "router 'r1' does not serve 'hotspot' (its sources: interfaces, queues)",
    });
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", [frame("r1", 3, ALL)]));
    assert.match(h.feed.get("r1", "hotspot").refused.message, /does not serve 'hotspot'/);
    assert.equal(h.feed.get("r1").refused, null);
    assert.deepEqual(h.take(), [full("r1", 2)]);
  });

  test("rows mode: the token's rows (or the named ones) with their history, in one step", () => {
    const h = harness();
    h.feed.opened();
    h.feed.watchRows("r1", "queues", null, 900);
    h.feed.watchRows("r1", "interfaces", ["<pppoe-a>"], 900);
    assert.deepEqual(h.take(), [
      { type: "subscribe", router: "r1", source: "queues", history_seconds: 900 },
      {
        type: "subscribe",
        router: "r1",
        interfaces: [{ exact: "<pppoe-a>" }],
        history_seconds: 900,
      },
    ]);
    const queues = h.feed.get("r1", "queues");
    h.feed.handle(sourced(status("r1"), "queues"));
    const mine = [1, 2, 3].map((seq) => queueFrame("r1", seq, ["<pppoe-a>"]));
    h.feed.handle(sourced(history("r1", mine), "queues"));
    h.feed.handle(status("r1"));
    h.feed.handle(history("r1", [only(frame("r1", 5, ALL), ["<pppoe-a>"])]));
    assert.deepEqual(h.take(), [], "no second step: nothing wider is ever asked for");
    h.feed.handle(queueFrame("r1", 4, ["<pppoe-a>"]));
    assert.equal(queues.latest.seq, 4);
    assert.equal(queues.series.points.length, 4);
    assert.deepEqual(h.feed.get("r1").latest.interfaces.map((i) => i.name), ["<pppoe-a>"]);
    // The same demand again sends nothing; a reconnect asks again.
    h.feed.watchRows("r1", "queues", null, 900);
    assert.deepEqual(h.take(), []);
    h.disconnect();
    h.connect();
    assert.equal(h.take().length, 2);
  });

  test("a frame without a source is an interfaces frame", () => {
    const h = harness();
    h.feed.opened();
    h.feed.want("r1", ["ether1"]);
    serve(h, "r1", [frame("r1", 1, ALL)]);
    serve(h, "r1", [frame("r1", 1, ALL)]);
    h.feed.handle({ ...frame("r1", 2, ALL), source: "interfaces" });
    h.feed.handle(frame("r1", 3, ALL));
    assert.equal(h.feed.get("r1").latest.seq, 3);
    assert.equal(h.feed.get("r1", "queues"), undefined);
  });
});
