/**
 * The customer view's entry point (`/customer`, README "The customer view"). It reads what the
 * address asks for (customer.js), connects like the dashboard (link.js: the token never in a
 * URL, refreshed in-band), subscribes to the customer's rows only ("rows" mode of feed.js:
 * their names, or what the token shows, with the window's history and nothing else) and
 * draws them (customerview.js) at most once per animation frame, and once a second.
 */

import {
  CHART_ORDER,
  customerRequest,
  customerSummary,
  tokenClaims,
  watchPlan,
} from "./customer.js";
import { CustomerView } from "./customerview.js";
import { paintBadge } from "./dashboard.js";
import { Feed } from "./feed.js";
import { GatewayLink, routerSources } from "./link.js";
import { rowsOf, SOURCES } from "./sources.js";
import { connectionBadge, viewBadge } from "./status.js";

/** Seconds the page waits for the gateway's list of routers and their sources. */
const LIST_TIMEOUT = 10;

// The link first: the token leaves the address bar before anything else reads the URL.
const link = new GatewayLink({
  onMessage: (message) => feed.handle(message),
  onOpen: () => feed.opened(),
  onClose: () => feed.closed(),
  onChange: () => scheduleRender(),
});
const socket = link.socket;
const request = customerRequest(location.search);

const state = {
  /** The router shown: the address's, else the first the token shows (from hello). */
  router: request.router,
  /** The sources that router serves (null until /api/routers answered). */
  served: null,
  /** The chart's time window, in minutes. */
  window: request.window,
  /** The row the viewer chose to chart (`{source, name}`), or null for the default. */
  chosen: null,
  /** What is wrong with the router asked for, in words (or ""). */
  routerProblem: "",
  /** Why nothing is watched on it, in words (or ""). */
  reason: "",
  /** The sources watched now. */
  watched: new Set(),
};

const feed = new Feed({ send: (message) => link.send(message), onChange: feedChanged });

function feedChanged(kind) {
  if (kind === "hello") {
    const listed = feed.routerList.map((router) => router.id);
    state.router ??= listed[0] ?? null;
    if (state.router === null) state.routerProblem = "this token shows no router";
    else if (!listed.includes(state.router)) {
      state.routerProblem = `router ${state.router} is not one this token shows`;
    } else state.routerProblem = "";
    // The token may have changed (an in-band refresh says "hello" too): plan again.
    loadSources();
  }
  scheduleRender();
}

async function loadSources() {
  if (state.router === null || state.routerProblem) {
    plan();
    return;
  }
  const served = await routerSources(link.token, SOURCES, LIST_TIMEOUT);
  // Without an answer, ask for every source: one the router does not serve is refused alone.
  state.served = served?.get(state.router) ?? (served === null ? [...SOURCES] : []);
  plan();
}

/** Subscribe what the address and the token say, and nothing else. */
function plan() {
  // A router the token does not show: nothing to ask for (it would only be refused).
  const { watch, reason } = state.routerProblem
    ? { watch: new Map(), reason: "" }
    : watchPlan({
        router: state.router,
        served: state.served,
        request,
        claims: tokenClaims(link.token),
      });
  state.reason = reason;
  const seconds = state.window * 60;
  for (const source of SOURCES) {
    if (watch.has(source)) feed.watchRows(state.router, source, watch.get(source), seconds);
    else if (feed.get(state.router, source) !== undefined) feed.want(state.router, null, 0, source);
  }
  state.watched = new Set(watch.keys());
  scheduleRender();
}

const view = new CustomerView(document.querySelector("main.customer"), {
  setWindow(minutes) {
    state.window = minutes;
    plan();
  },
  choose(row) {
    state.chosen = row;
    scheduleRender();
  },
});

const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");
darkQuery.addEventListener("change", () => {
  const preference = document.documentElement.dataset.themePref ?? "auto";
  document.documentElement.dataset.theme =
    preference === "dark" || (preference === "auto" && darkQuery.matches) ? "dark" : "light";
  view.restyle();
  scheduleRender();
});

const badge = document.getElementById("connection");
const retry = document.getElementById("retry");
retry.addEventListener("click", () => socket.retryNow());

let renderQueued = 0;

function scheduleRender() {
  if (renderQueued === 0) renderQueued = requestAnimationFrame(render);
}

function render() {
  renderQueued = 0;
  const now = Date.now();
  const topics = new Map();
  for (const source of state.watched) topics.set(source, feed.get(state.router, source));
  const rows = {};
  let newest = null;
  for (const [source, topic] of topics) {
    rows[source] = topic?.rows() ?? [];
    if (topic?.latest && (newest === null || topic.latest.ts > newest.ts)) newest = topic.latest;
  }
  const skew = [...topics.values()].find((topic) => topic?.latestAt)?.skew ?? 0;
  const serverNow = now / 1000 + skew;
  const summary = customerSummary(rows, {
    chosen: state.chosen,
    now: serverNow,
    age: newest === null ? 0 : serverNow - newest.ts,
  });
  // The badge: the connection, then the charted source's state (down, stale, live).
  const charted = summary.chart ? topics.get(summary.chart.source) : [...topics.values()][0];
  const shown =
    charted === undefined || socket.state !== "open"
      ? connectionBadge(socket)
      : viewBadge({ running: true, socket, feed: charted, now });
  paintBadge(badge, shown);
  retry.hidden = socket.state !== "stopped";

  const span = state.window * 60;
  const first = charted?.series.first?.ts ?? serverNow;
  const listed = CHART_ORDER.flatMap((source) =>
    rowsOf(topics.get(source)?.latest, source).map((row) => ({ source, name: row.name })),
  );
  let note = state.routerProblem || state.reason;
  if (!note && newest !== null && listed.length === 0) {
    note = "nothing to show: this customer is not connected now";
  }
  view.update({
    summary,
    rows: listed,
    note: note ? `${note[0].toUpperCase()}${note.slice(1)}.` : "",
    window: state.window,
    series: summary.chart ? (topics.get(summary.chart.source)?.series ?? null) : null,
    range: [Math.max(serverNow - span, Math.min(first, serverNow - 10)), serverNow],
    live: shown.kind === "live",
  });
}

// Countdowns, uptimes and the moving time axis; a hidden tab skips drawing altogether.
setInterval(() => {
  if (!document.hidden) scheduleRender();
}, 1000);

/** For a look from the browser console (and the browser tests): the live objects, read-only. */
window.gatewayCustomer = Object.freeze({ feed, socket, state });

link.start();
