/**
 * The page's entry point. It owns the views (router, source, window, charted rows, running)
 * and wires the pieces together: socket.js keeps the connection, feed.js speaks the protocol,
 * urlstate.js keeps the views in the address bar, dashboard.js draws. It renders at most once
 * per animation frame, and once a second for countdowns, staleness and the moving time axis.
 */

import { Header, ViewPanel } from "./dashboard.js";
import { Feed, MAX_CHARTED, topicKey } from "./feed.js";
import { GatewayLink, routerSources } from "./link.js";
import { DEFAULT_SOURCE, rowsOf, SOURCES } from "./sources.js";
import { connectionBadge, viewBadge } from "./status.js";
import { topNames } from "./table.js";
import { formatSearch, newView, parseViews } from "./urlstate.js";

/**
 * Rows charted when a view opens without naming any: the three busiest interfaces, or the top
 * queue (by use of its plan) or hotspot user, whose lines and plan read well on their own.
 */
const AUTO_PICK = { interfaces: 3, queues: 1, hotspot: 1 };

/** Seconds the page waits for the gateway's list of routers and their sources. */
const LIST_TIMEOUT = 10;

// The token and the websocket (link.js), first: the token leaves the address bar before anything
// else reads the URL. The feed hears every message and every open and close.
const link = new GatewayLink({
  onMessage: (message) => feed.handle(message),
  onOpen: () => feed.opened(),
  onClose: () => feed.closed(),
  onChange: () => scheduleRender(),
});
const socket = link.socket;

const template = document.getElementById("view-template");
const container = document.getElementById("views");

/**
 * Router id -> the sources it serves (README, "HTTP endpoints": `/api/routers`), so a view's
 * switch offers only those. A router missing here is not known yet (the switch then offers
 * interfaces, the one every router has).
 */
const servedSources = new Map();

/** Read which sources each router serves (the viewer's token decides which routers it sees). */
async function loadSources() {
  const served = await routerSources(link.token, SOURCES, LIST_TIMEOUT);
  // Offline or too slow: the switch offers interfaces until the next hello asks again.
  if (served === null) return;
  for (const [id, sources] of served) servedSources.set(id, sources);
  scheduleRender();
}

let nextKey = 1;
const views = parseViews(location.search).map((view) => ({
  ...view,
  key: nextKey++,
  running: true,
}));
/** View key -> its panel. */
const panels = new Map();

const feed = new Feed({ send: (message) => link.send(message), onChange: feedChanged });

function feedChanged(kind, routerId, source) {
  if (kind === "hello") {
    const first = feed.routerList[0]?.id ?? null;
    for (const view of views) view.router ??= first;
    loadSources();
    viewsChanged();
  } else if (kind === "frame" || kind === "history") {
    autoPick(routerId, source);
  }
  scheduleRender();
}

/** Chart the busiest rows of views that name none, once their topic's frame is in. */
function autoPick(routerId, source) {
  const latest = feed.get(routerId, source)?.latest;
  if (!latest) return;
  let picked = false;
  for (const view of views) {
    if (view.router === routerId && view.source === source && view.names === null) {
      const names = topNames(rowsOf(latest, source), source, AUTO_PICK[source] ?? 1);
      if (names.length > 0) {
        view.names = names;
        picked = true;
      }
    }
  }
  if (picked) viewsChanged();
}

/**
 * Subscribe what running views show and unsubscribe the rest; keep the URL in step. A topic's
 * (a router's source's) demand is the union of its running views' charted rows, as far back
 * as the widest of their windows: the history the gateway sends is no more than that.
 */
function viewsChanged() {
  const demand = new Map(
    [...feed.topics.values()].map((t) => [topicKey(t.id, t.source), { topic: t, wanted: null }]),
  );
  for (const view of views) {
    if (view.router === null) continue;
    const key = topicKey(view.router, view.source);
    const entry = demand.get(key) ?? { topic: feed.topic(view.router, view.source), wanted: null };
    demand.set(key, entry);
    if (view.running) {
      entry.wanted ??= { names: new Set(), seconds: 0 };
      for (const name of view.names ?? []) entry.wanted.names.add(name);
      entry.wanted.seconds = Math.max(entry.wanted.seconds, view.window * 60);
    }
  }
  for (const { topic, wanted } of demand.values()) {
    if (wanted === null) feed.want(topic.id, null, undefined, topic.source);
    else feed.want(topic.id, [...wanted.names], wanted.seconds, topic.source);
  }
  const search = formatSearch(location.search, views);
  if (search !== location.search) {
    history.replaceState(history.state, "", `${location.pathname}${search}${location.hash}`);
  }
  scheduleRender();
}

function viewActions(view) {
  return {
    setRouter(id) {
      view.router = id;
      view.names = null; // a new router: chart its busiest rows
      // A source the new router does not serve: back to its interfaces.
      const served = servedSources.get(id);
      if (served !== undefined && !served.includes(view.source)) view.source = DEFAULT_SOURCE;
      viewsChanged();
    },
    setSource(source) {
      if (source === view.source) return;
      view.source = source;
      view.names = null; // another source: chart its busiest rows
      viewsChanged();
    },
    setWindow(minutes) {
      view.window = minutes;
      viewsChanged();
    },
    toggleName(name, on) {
      const names = (view.names ?? []).filter((n) => n !== name);
      if (on && names.length < MAX_CHARTED) names.push(name);
      view.names = names;
      viewsChanged();
    },
    toggleRunning() {
      view.running = !view.running;
      viewsChanged();
    },
    remove() {
      views.splice(views.indexOf(view), 1);
      panels.get(view.key)?.destroy();
      panels.delete(view.key);
      viewsChanged();
    },
  };
}

function panelFor(view) {
  let panel = panels.get(view.key);
  if (panel === undefined) {
    panel = new ViewPanel(template, viewActions(view));
    panels.set(view.key, panel);
    container.append(panel.root);
  }
  return panel;
}

function addView() {
  const shown = new Set(views.map((view) => view.router));
  const next = feed.routerList.find((r) => !shown.has(r.id)) ?? feed.routerList[0];
  const view = { ...newView(next?.id ?? null), key: nextKey++, running: true };
  views.push(view);
  viewsChanged();
  panelFor(view).root.scrollIntoView({ behavior: "smooth", block: "start" });
}

const darkQuery = window.matchMedia("(prefers-color-scheme: dark)");

/** `preference`: "auto" (follow the system), "light" or "dark"; remembered in this browser. */
function applyTheme(preference) {
  const root = document.documentElement;
  const dark = preference === "dark" || (preference === "auto" && darkQuery.matches);
  root.dataset.themePref = preference;
  root.dataset.theme = dark ? "dark" : "light";
  try {
    localStorage.setItem("theme", preference);
  } catch {
    // storage disabled: the choice lasts for this page only
  }
  for (const panel of panels.values()) panel.restyle();
  scheduleRender();
}
darkQuery.addEventListener("change", () => applyTheme(document.documentElement.dataset.themePref));

const header = new Header({
  onAddView: addView,
  onRetry: () => socket.retryNow(),
  onTheme: applyTheme,
});

let renderQueued = 0;

function scheduleRender() {
  if (renderQueued === 0) renderQueued = requestAnimationFrame(render);
}

function render() {
  renderQueued = 0;
  const now = Date.now();
  header.update(connectionBadge(socket), socket.state === "stopped");
  for (const view of views) {
    const topic = view.router === null ? null : feed.topic(view.router, view.source);
    const badge =
      topic === null
        ? connectionBadge(socket)
        : viewBadge({ running: view.running, socket, feed: topic, now });
    panelFor(view).update({
      view,
      routers: feed.routerList,
      sources: view.router === null ? null : (servedSources.get(view.router) ?? null),
      feed: topic,
      badge,
      now: now / 1000 + (topic?.skew ?? 0),
    });
  }
  container.dataset.views = String(views.length);
}

// Countdowns, staleness and the moving time axis; a hidden tab skips drawing altogether.
setInterval(() => {
  if (!document.hidden) scheduleRender();
}, 1000);

/** For a look from the browser console (and the browser tests): the live objects, read-only. */
window.gatewayDashboard = Object.freeze({ views, feed, socket, servedSources });

viewsChanged();
link.start();
