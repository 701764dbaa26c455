import assert from "node:assert/strict";
import { test } from "node:test";

import {
  MESSAGE_REQUEST,
  MESSAGE_TOKEN,
  REFRESH_TIMEOUT,
  TokenSource,
  takeToken,
} from "../static/js/token.js";
import { FakeClock } from "./fakes.js";

const JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";

test("a token in the fragment is taken and the fragment dropped", () => {
  assert.deepEqual(takeToken(`https://gw.example/#token=${JWT}`), { token: JWT, cleaned: "/" });
});

test("a token in the query is taken too, and the views stay exactly as written", () => {
  const href = `https://gw.example/?view=isp~5m~%3Cpppoe-a%3E&token=${JWT}&view=office~1m`;
  assert.deepEqual(takeToken(href), {
    token: JWT,
    cleaned: "/?view=isp~5m~%3Cpppoe-a%3E&view=office~1m",
  });
});

test("the fragment wins over the query, and both leave the address bar", () => {
  const href = `https://gw.example/dash?token=old&view=a~1m#token=${JWT}&theme=dark`;
  assert.deepEqual(takeToken(href), { token: JWT, cleaned: "/dash?view=a~1m#theme=dark" });
});

test("a URL without a token is left alone", () => {
  assert.deepEqual(takeToken("https://gw.example/?view=a~1m#x"), { token: null, cleaned: null });
});

test("an empty token is no token, but is still removed from the URL", () => {
  assert.deepEqual(takeToken("https://gw.example/?token=&view=a~1m"), {
    token: null,
    cleaned: "/?view=a~1m",
  });
});

/** A framed page's window: its parent records what the page posts to which origin. */
function framedWindow() {
  const listeners = [];
  const parent = {
    posted: [],
    postMessage(data, origin) {
      this.posted.push({ data, origin });
    },
  };
  return {
    parent,
    addEventListener: (type, fn) => type === "message" && listeners.push(fn),
    deliver: (event) => listeners.forEach((fn) => fn(event)),
  };
}

const PORTAL = "https://portal.example.net";

test("a new token comes from the token URL, with the portal's cookies and no cache", async () => {
  const calls = [];
  const fetch = async (url, init) => {
    calls.push({ url, init });
    return { ok: true, json: async () => ({ token: "fresh" }) };
  };
  const tokens = new TokenSource({ tokenUrl: `${PORTAL}/gateway-token`, fetch, window: {} });
  assert.equal(tokens.canRefresh, true);
  assert.equal(await tokens.obtain(), "fresh");
  assert.equal(calls[0].url, `${PORTAL}/gateway-token`);
  assert.equal(calls[0].init.credentials, "include");
  assert.equal(calls[0].init.cache, "no-store");
});

test("a token URL that fails, refuses or answers nonsense gives no token", async () => {
  const answers = [
    async () => ({ ok: false, json: async () => ({ token: "x" }) }),
    async () => ({ ok: true, json: async () => ({ jwt: "x" }) }),
    async () => ({ ok: true, json: async () => Promise.reject(new SyntaxError("html")) }),
    async () => Promise.reject(new TypeError("Failed to fetch")),
  ];
  for (const fetch of answers) {
    const tokens = new TokenSource({ tokenUrl: "/token", fetch, window: {} });
    assert.equal(await tokens.obtain(), null);
  }
});

test("a framed page asks its allowed parents and takes the answer from them only", async () => {
  const window = framedWindow();
  const clock = new FakeClock();
  const tokens = new TokenSource({ embedders: [PORTAL], window, clock });
  tokens.listen(() => assert.fail("an answer is not a push"));
  assert.equal(tokens.embedded, true);
  const pending = tokens.obtain();
  assert.deepEqual(window.parent.posted, [{ data: { type: MESSAGE_REQUEST }, origin: PORTAL }]);
  // Another origin, or another window, cannot hand the page a token.
  const token = (value) => ({ type: MESSAGE_TOKEN, token: value });
  window.deliver({ source: window.parent, origin: "https://evil.example", data: token("bad") });
  window.deliver({ source: {}, origin: PORTAL, data: token("bad") });
  window.deliver({ source: window.parent, origin: PORTAL, data: token("good") });
  assert.equal(await pending, "good");
});

test("a parent that does not answer gives no token after the timeout", async () => {
  const window = framedWindow();
  const clock = new FakeClock();
  const tokens = new TokenSource({ embedders: [PORTAL], window, clock });
  const pending = tokens.obtain();
  clock.advance(REFRESH_TIMEOUT * 1000);
  assert.equal(await pending, null);
});

test("tokens the parent pushes unasked are passed on", () => {
  const window = framedWindow();
  const tokens = new TokenSource({ embedders: [PORTAL], window });
  const pushed = [];
  tokens.listen((token) => pushed.push(token));
  const from = (data) => ({ source: window.parent, origin: PORTAL, data });
  window.deliver(from({ type: MESSAGE_TOKEN, token: "t2" }));
  window.deliver(from({ type: "other", token: "t3" }));
  assert.deepEqual(pushed, ["t2"]);
});

test("a page neither framed nor given a token URL cannot refresh", async () => {
  const top = {};
  top.parent = top;
  const tokens = new TokenSource({ embedders: [PORTAL], window: top });
  assert.equal(tokens.canRefresh, false);
  assert.equal(await tokens.obtain(), null);
});
