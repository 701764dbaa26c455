import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  backoffBound,
  backoffDelay,
  CLOSE_WATCHDOG,
  closeDecision,
  HEALTHY_AFTER,
  OPEN_TIMEOUT,
  POLICY,
  ReconnectingSocket,
  retryDelay,
  TRY_AGAIN_FLOOR,
  tryAgainDelay,
} from "../static/js/socket.js";
import { FakeClock, FakeTarget, fakeWebSocketClass, scriptedRandom } from "./fakes.js";

const ALMOST_ONE = 1 - 1e-9;

/** Equal to within a microsecond: delays are random() * bound with random() just under 1. */
function near(actual, expected) {
  assert.ok(Math.abs(actual - expected) < 1e-3, `${actual} is not ${expected}`);
}

function harness({ random = () => ALMOST_ONE, visibilityState = "visible" } = {}) {
  const clock = new FakeClock();
  const { FakeWebSocket, instances } = fakeWebSocketClass();
  const window = new FakeTarget();
  const document = new FakeTarget({ visibilityState });
  const messages = [];
  const changes = [];
  const socket = new ReconnectingSocket({
    url: "ws://gateway.test/ws",
    onMessage: (m) => messages.push(m),
    onChange: (s) => changes.push(s.state),
    WebSocket: FakeWebSocket,
    clock,
    random,
    events: { window, document },
  });
  const current = () => instances[instances.length - 1];
  /** Let the current try fail the way a refused TCP connection does. */
  const refuse = () => current().serverClose(1006);
  return { clock, socket, instances, current, refuse, messages, changes, window, document };
}

describe("backoff sequence", () => {
  test("bounds double from 0.5 s and stop at the 20 s cap", () => {
    const bounds = Array.from({ length: 9 }, (_, n) => backoffBound(n));
    assert.deepEqual(bounds, [0.5, 1, 2, 4, 8, 16, 20, 20, 20]);
    assert.equal(backoffBound(1000), POLICY.cap);
  });

  test("every delay lies within [0, bound) for its attempt", () => {
    for (let n = 0; n < 12; n++) {
      for (const r of [0, 0.25, 0.5, ALMOST_ONE]) {
        const delay = backoffDelay(n, () => r);
        assert.ok(delay >= 0 && delay < backoffBound(n), `attempt ${n}, random ${r}: ${delay}`);
      }
    }
    assert.equal(backoffDelay(3, () => 0), 0);
    assert.equal(backoffDelay(3, () => 0.5), 2);
  });

  test("full jitter spreads delays over the whole range", () => {
    const attempt = 6; // bound 20 s, the cap
    const samples = Array.from({ length: 4000 }, () => backoffDelay(attempt));
    const min = Math.min(...samples);
    const max = Math.max(...samples);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    assert.ok(min < 0.5, `min ${min}`);
    assert.ok(max > 19.5 && max <= 20, `max ${max}`);
    assert.ok(Math.abs(mean - 10) < 0.6, `mean ${mean}`);
    // No two clients in lockstep: the values are not clustered on a few points.
    const buckets = new Set(samples.map((s) => Math.floor(s)));
    assert.equal(buckets.size, 20);
  });

  test("1013 waits at least the floor and at most the cap, longer than usual", () => {
    for (let n = 0; n < 10; n++) {
      assert.equal(tryAgainDelay(n, () => 0), TRY_AGAIN_FLOOR);
      const high = tryAgainDelay(n, () => ALMOST_ONE);
      assert.ok(high <= POLICY.cap && high > backoffDelay(n, () => ALMOST_ONE) - 1e-6);
    }
  });
});

describe("close codes", () => {
  test("1008 and 4401 are terminal and say why", () => {
    assert.equal(closeDecision(1008).action, "stop");
    assert.match(closeDecision(1008).why, /origin/);
    assert.equal(closeDecision(4401).action, "stop");
    assert.match(closeDecision(4401).why, /token/);
    assert.equal(retryDelay(1008, 0), null);
    assert.equal(retryDelay(4401, 3), null);
  });

  test("1013 and 4429 back off longer; everything else retries with the usual backoff", () => {
    assert.equal(closeDecision(1013).action, "slow");
    assert.equal(closeDecision(4429).action, "slow");
    assert.match(closeDecision(4429).why, /faster than the gateway allows/);
    assert.ok(retryDelay(4429, 0, () => 0) >= TRY_AGAIN_FLOOR);
    for (const code of [1000, 1001, 1006, 1009, 1011, 4408, CLOSE_WATCHDOG, 4999]) {
      assert.equal(closeDecision(code).action, "retry", `code ${code}`);
      assert.ok(closeDecision(code).why.length > 0);
    }
    assert.ok(retryDelay(1013, 0, () => 0) >= TRY_AGAIN_FLOOR);
    assert.equal(retryDelay(1001, 0, () => 0), 0);
  });
});

describe("ReconnectingSocket", () => {
  test("failed tries are spaced by the growing, capped backoff", () => {
    const h = harness();
    h.socket.start();
    const delays = [];
    for (let i = 0; i < 9; i++) {
      h.refuse();
      assert.equal(h.socket.state, "waiting");
      delays.push((h.socket.retryAt - h.clock.now()) / 1000);
      h.clock.advance(h.socket.retryAt - h.clock.now());
      assert.equal(h.socket.state, "connecting");
    }
    const expected = [0.5, 1, 2, 4, 8, 16, 20, 20, 20];
    delays.forEach((d, i) => assert.ok(Math.abs(d - expected[i]) < 1e-6, `${i}: ${d}`));
    assert.equal(h.instances.length, 10);
  });

  test("the count resets only after a connection stayed healthy", () => {
    const h = harness();
    h.socket.start();
    h.refuse();
    h.clock.advance(1000);
    h.refuse(); // attempt 2 next
    h.clock.advance(2000);
    // Opens, then drops before it proved healthy: the backoff keeps growing.
    h.current().serverOpen();
    h.clock.advance((HEALTHY_AFTER - 1) * 1000);
    h.current().serverClose(1011);
    near(h.socket.retryAt - h.clock.now(), 2000);
    h.clock.advance(2000);
    // Opens and stays up: the next close starts again from the base delay.
    h.current().serverOpen();
    h.current().serverSend({ type: "hello", v: 1, routers: [], heartbeat: 20 });
    h.clock.advance(HEALTHY_AFTER * 1000);
    h.current().serverClose(1001);
    near(h.socket.retryAt - h.clock.now(), 500);
  });

  test("a terminal close stops retrying and says why", () => {
    const h = harness();
    h.socket.start();
    h.current().serverOpen();
    h.current().serverClose(4401, "token expired");
    assert.equal(h.socket.state, "stopped");
    assert.equal(h.clock.nextTimer(), null);
    assert.match(h.socket.lastClose.why, /token/);
    assert.equal(h.socket.lastClose.reason, "token expired");
    h.clock.advance(600_000);
    assert.equal(h.instances.length, 1);
    // Only the user starts it again.
    h.socket.retryNow();
    assert.equal(h.instances.length, 2);
  });

  test("1013 backs off longer than other codes", () => {
    const h = harness({ random: () => 0 });
    h.socket.start();
    h.current().serverClose(1013);
    assert.equal(h.socket.retryAt - h.clock.now(), TRY_AGAIN_FLOOR * 1000);
    h.clock.advance(TRY_AGAIN_FLOOR * 1000);
    h.current().serverClose(1001);
    assert.equal(h.socket.retryAt - h.clock.now(), 0);
  });

  test("coming back online or to a visible tab tries at once", () => {
    const h = harness();
    h.socket.start();
    h.refuse();
    h.clock.advance(500);
    h.refuse();
    h.clock.advance(1000);
    h.refuse(); // now waiting 2 s
    assert.equal(h.socket.state, "waiting");
    const before = h.instances.length;
    h.window.dispatchEvent(new Event("online"));
    assert.equal(h.instances.length, before + 1);
    assert.equal(h.socket.state, "connecting");
    h.refuse(); // waiting again, 4 s: the count was not reset by the early try
    near(h.socket.retryAt - h.clock.now(), 4000);
    h.document.visibilityState = "hidden";
    h.document.dispatchEvent(new Event("visibilitychange"));
    assert.equal(h.instances.length, before + 1);
    h.document.visibilityState = "visible";
    h.document.dispatchEvent(new Event("visibilitychange"));
    assert.equal(h.instances.length, before + 2);
  });

  test("online does not revive a terminal close", () => {
    const h = harness();
    h.socket.start();
    h.current().serverClose(1008);
    h.window.dispatchEvent(new Event("online"));
    assert.equal(h.instances.length, 1);
    assert.equal(h.socket.state, "stopped");
  });

  test("the watchdog reconnects after two heartbeats of silence", () => {
    const h = harness();
    h.socket.start();
    const ws = h.current();
    ws.serverOpen();
    ws.serverSend({ type: "hello", v: 1, routers: [], heartbeat: 5 });
    h.clock.advance(9000);
    ws.serverSend({ type: "heartbeat", ts: 1 }); // re-arms: 10 s from now
    h.clock.advance(9999);
    assert.equal(h.socket.state, "open");
    h.clock.advance(1);
    assert.deepEqual(ws.closedWith, { code: CLOSE_WATCHDOG, reason: "watchdog" });
    assert.equal(h.socket.state, "waiting");
    assert.equal(h.socket.lastClose.code, CLOSE_WATCHDOG);
    // The dead socket's late close event changes nothing.
    ws.serverClose(1006);
    assert.equal(h.socket.state, "waiting");
    h.clock.advance(500);
    assert.equal(h.instances.length, 2);
  });

  test("a tab coming back checks a connection its throttled watchdog may have missed", () => {
    const h = harness();
    h.socket.start();
    const ws = h.current();
    ws.serverOpen();
    ws.serverSend({ type: "hello", v: 1, routers: [], heartbeat: 5 });
    h.clock.advance(3000);
    h.document.dispatchEvent(new Event("visibilitychange"));
    assert.equal(h.instances.length, 1, "recent traffic: the connection is kept");
    // Background tabs delay timers: the clock moves on without the watchdog running.
    h.clock.t += 20_000;
    h.document.dispatchEvent(new Event("visibilitychange"));
    assert.equal(ws.closedWith.code, CLOSE_WATCHDOG);
    assert.equal(h.instances.length, 2);
    assert.equal(h.socket.state, "connecting");
  });

  test("a connection that never opens is abandoned after the open timeout", () => {
    const h = harness();
    h.socket.start();
    h.clock.advance(OPEN_TIMEOUT * 1000);
    assert.equal(h.instances[0].closedWith.code, CLOSE_WATCHDOG);
    assert.equal(h.socket.state, "waiting");
  });

  test("messages are parsed and passed on; send works only while open", () => {
    const h = harness();
    h.socket.start();
    assert.equal(h.socket.send({ type: "subscribe", router: "a" }), false);
    h.current().serverOpen();
    assert.equal(h.socket.send({ type: "subscribe", router: "a" }), true);
    assert.deepEqual(h.current().sent, [{ type: "subscribe", router: "a" }]);
    h.current().onmessage({ data: "not json" });
    h.current().serverSend({ type: "traffic", seq: 1 });
    assert.deepEqual(h.messages, [{ type: "traffic", seq: 1 }]);
    assert.deepEqual(h.changes.slice(0, 2), ["connecting", "open"]);
  });

  test("the first message goes out on every connection before anything the page sends", () => {
    const clock = new FakeClock();
    const { FakeWebSocket, instances } = fakeWebSocketClass();
    let token = "t1";
    const socket = new ReconnectingSocket({
      url: "ws://gateway.test/ws",
      onMessage: () => {},
      // What feed.js does on every open: subscribe at once.
      onChange: (s) => s.state === "open" && s.send({ type: "subscribe", router: "a" }),
      firstMessage: () => ({ type: "auth", token }),
      WebSocket: FakeWebSocket,
      clock,
      random: () => 0,
      events: {},
    });
    socket.start();
    instances[0].serverOpen();
    assert.deepEqual(instances[0].sent, [
      { type: "auth", token: "t1" },
      { type: "subscribe", router: "a" },
    ]);
    // A refreshed token is what the next connection sends.
    token = "t2";
    instances[0].serverClose(1006);
    clock.advance(1000);
    instances[1].serverOpen();
    assert.deepEqual(instances[1].sent[0], { type: "auth", token: "t2" });
  });

  test("without a first message, nothing is sent before the page's own", () => {
    const h = harness();
    h.socket.start();
    h.current().serverOpen();
    assert.deepEqual(h.current().sent, []);
  });

  test("secondsToRetry counts down", () => {
    const h = harness({ random: scriptedRandom(ALMOST_ONE) });
    h.socket.start();
    h.refuse();
    h.clock.advance(500);
    h.refuse();
    h.clock.advance(1000);
    h.refuse();
    h.clock.advance(2000);
    h.refuse(); // 4 s
    assert.equal(h.socket.secondsToRetry(), 4);
    h.clock.advance(1500);
    assert.equal(h.socket.secondsToRetry(), 3);
    h.clock.advance(2000);
    assert.equal(h.socket.secondsToRetry(), 1);
  });
});
