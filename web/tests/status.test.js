import assert from "node:assert/strict";
import { test } from "node:test";

import { RouterFeed } from "../static/js/feed.js";
import { connectionBadge, STALE_GRACE, viewBadge } from "../static/js/status.js";

const NOW = 1_000_000;

function socket(state, extra = {}) {
  return {
    state,
    lastClose: null,
    secondsToRetry: () => 7,
    ...extra,
  };
}

function liveFeed(ageSeconds = 0) {
  const feed = new RouterFeed("r1");
  feed.status = { type: "status", router: "r1", state: "up", error: null, since: 1 };
  feed.latest = { seq: 1, ts: 1, interval: 1, stale: false, interfaces: [] };
  feed.latestAt = NOW - ageSeconds * 1000;
  return feed;
}

test("connection badge: live, reconnecting with a countdown, disconnected with the reason", () => {
  assert.equal(connectionBadge(socket("open")).text, "Live");
  const lost = { code: 1006, reason: "", why: "the connection to the gateway was lost" };
  const waiting = connectionBadge(socket("waiting", { lastClose: lost }));
  assert.deepEqual(waiting, {
    kind: "reconnecting",
    text: "Reconnecting in 7 s",
    detail: "the connection to the gateway was lost",
  });
  const stopped = connectionBadge(
    socket("stopped", { lastClose: { code: 4401, reason: "", why: "token expired" } }),
  );
  assert.equal(stopped.kind, "down");
  assert.equal(stopped.text, "Disconnected");
  assert.match(stopped.detail, /token expired \(code 4401\)/);
  assert.equal(connectionBadge(socket("connecting")).text, "Connecting…");
});

test("view badge, most urgent first", () => {
  const open = socket("open");
  assert.equal(viewBadge({ running: true, socket: open, feed: liveFeed(), now: NOW }).text, "Live");
  assert.equal(
    viewBadge({ running: false, socket: open, feed: liveFeed(), now: NOW }).text,
    "Stopped",
  );
  const lost = socket("waiting", { lastClose: { code: 1006, why: "lost" } });
  assert.equal(
    viewBadge({ running: true, socket: lost, feed: liveFeed(), now: NOW }).text,
    "Reconnecting in 7 s",
  );
  const down = liveFeed();
  down.status = { state: "down", error: "timed out after 1 s", since: 1_700_000_000 };
  const badge = viewBadge({ running: true, socket: open, feed: down, now: NOW });
  assert.equal(badge.kind, "down");
  assert.match(badge.text, /^Router down since \d\d:\d\d:\d\d$/);
  assert.equal(badge.detail, "timed out after 1 s");
});

test("data older than two intervals plus the grace is stale", () => {
  const open = socket("open");
  const at = (age) => viewBadge({ running: true, socket: open, feed: liveFeed(age), now: NOW });
  assert.equal(at(2 + STALE_GRACE).kind, "live");
  const old = at(2 + STALE_GRACE + 1);
  assert.equal(old.kind, "stale");
  assert.equal(old.detail, "last update 6 s ago");
  const flagged = liveFeed();
  flagged.latest = { ...flagged.latest, stale: true };
  assert.equal(viewBadge({ running: true, socket: open, feed: flagged, now: NOW }).kind, "stale");
});

test("before the first frame the view says it is waiting for the router", () => {
  const feed = new RouterFeed("r1");
  const badge = viewBadge({ running: true, socket: socket("open"), feed, now: NOW });
  assert.equal(badge.kind, "pending");
  feed.refused = { code: "forbidden", message: "router r1 is not in your token" };
  const refused = viewBadge({ running: true, socket: socket("open"), feed, now: NOW });
  assert.equal(refused.kind, "down");
  assert.equal(refused.detail, "router r1 is not in your token");
});
