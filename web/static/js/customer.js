/**
 * The customer view's model (`/customer`, what a billing portal embeds for one customer):
 * which rows to watch, and what to say about them. Pure; no DOM, no I/O.
 *
 * The address says which customer, the token says what the viewer may see (README, "The
 * customer view"):
 *
 *     /customer?router=isp-bras&queue=cust0042&interface=<pppoe-alice>&hotspot=alice&window=15
 *
 * Every parameter is optional. `router` defaults to the first router the token shows.
 * `interface`, `queue` and `hotspot` (a hotspot user's login) name the customer's rows, each
 * matched exactly; without any of them the view watches, of each source the router serves,
 * whatever the token shows of it, which for a customer's token is the customer's own rows.
 * A token that is not limited to some rows of that router (an operator's, or none at all) with
 * no row named shows nothing: a view meant for one customer never pulls a whole router.
 *
 * The token is never in the address (token.js takes it from the fragment, the embedding page
 * or the portal's token URL). Its claims are read here only to choose what to ask for; the
 * gateway checks the signature and enforces the scope whatever the page asks.
 */

import { DEFAULT_SOURCE, planOf, ratesOf, SOURCES, sessionUptime } from "./sources.js";
import { utilisationOf } from "./table.js";
import { DEFAULT_WINDOW, WINDOWS } from "./urlstate.js";

/** The address parameter naming a customer's row of each source. */
export const ROW_PARAMS = Object.freeze({
  interfaces: "interface",
  queues: "queue",
  hotspot: "hotspot",
});

/** Which source the chart prefers when the customer has several rows: the one with a plan. */
export const CHART_ORDER = Object.freeze(["queues", "interfaces", "hotspot"]);

function params(search) {
  try {
    return new URLSearchParams(search);
  } catch {
    return new URLSearchParams();
  }
}

/**
 * What the address asks for: `{router, names, window}`, `names` mapping each source to the
 * row names given for it (possibly none).
 */
export function customerRequest(search) {
  const query = params(search);
  const names = {};
  for (const source of SOURCES) {
    names[source] = [...new Set(query.getAll(ROW_PARAMS[source]).filter(Boolean))];
  }
  const minutes = Number.parseInt(query.get("window") ?? "", 10);
  return {
    router: query.get("router") || null,
    names,
    window: WINDOWS.includes(minutes) ? minutes : DEFAULT_WINDOW,
  };
}

/**
 * A JWT's claims, read without checking anything (the gateway does that): an object, or null
 * when `token` is not a readable JWT. Used only to choose what the page asks for.
 */
export function tokenClaims(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const base64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims !== null && typeof claims === "object" && !Array.isArray(claims) ? claims : null;
  } catch {
    return null;
  }
}

/**
 * The sources a token limits on `router` (README, "Access control"): null when it names the
 * router in none of its `interfaces`, `queues` and `hotspot` claims (the router is visible
 * whole), else the set of sources with an entry for it (the others show nothing).
 */
export function scopedSources(claims, router) {
  if (claims === null || typeof claims !== "object") return null;
  const scoped = SOURCES.filter((source) => {
    const claim = claims[source];
    return claim !== null && typeof claim === "object" && Object.hasOwn(claim, router);
  });
  return scoped.length > 0 ? new Set(scoped) : null;
}

/**
 * What to watch on `router`: `{watch, reason}`. `watch` maps each source to watch to the row
 * names to ask for (null: every row the token shows); `reason` says why nothing is watched
 * (`watch` empty), for the page to show.
 *
 * `served`: the sources the router serves (null: not known yet, then interfaces only);
 * `request`: `customerRequest()`; `claims`: `tokenClaims()` of the viewer's token.
 */
export function watchPlan({ router, served, request, claims }) {
  const sources = SOURCES.filter((source) => (served ?? [DEFAULT_SOURCE]).includes(source));
  const watch = new Map();
  const named = SOURCES.filter((source) => request.names[source].length > 0);
  if (named.length > 0) {
    for (const source of named) {
      if (sources.includes(source)) watch.set(source, request.names[source]);
    }
    const reason = watch.size ? "" : "the router does not serve what the address names";
    return { watch, reason };
  }
  const scoped = scopedSources(claims, router);
  if (scoped === null) {
    return {
      watch,
      reason:
        "this view shows one customer: open it with the customer's token, or name the " +
        "customer in the address (queue=, interface= or hotspot=)",
    };
  }
  for (const source of sources) if (scoped.has(source)) watch.set(source, null);
  return { watch, reason: watch.size ? "" : "the token shows nothing of this router" };
}

/** A queue target that is addresses (`10.20.0.43/32`, `2001:db8::/64`), not interfaces. */
const ADDRESSES = /^[0-9A-Fa-f:.\/, ]+$/;

const byName = (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The row the chart shows: `{source, name}` of `chosen` while it exists, else the customer's
 * queue (it has the plan), else its interface, else its hotspot user (the first by name);
 * null when there is no row at all. `rows` maps each source to its latest rows.
 */
export function chartRow(rows, chosen = null) {
  if (chosen !== null && (rows[chosen.source] ?? []).some((row) => row.name === chosen.name)) {
    return chosen;
  }
  for (const source of CHART_ORDER) {
    const found = [...(rows[source] ?? [])].sort(byName)[0];
    if (found !== undefined) return { source, name: found.name };
  }
  return null;
}

/**
 * The customer's session at `now`: a PPP session joined to a row (its uptime from `since`), or
 * the hotspot user's own fields (its uptime as of its frame, plus `age`).
 */
function sessionOf(rows, now, age) {
  for (const source of ["queues", "interfaces"]) {
    for (const row of rows[source] ?? []) {
      const session = row.session;
      if (session && typeof session === "object") {
        const { user = null, service = null, caller_id = null, address = null } = session;
        return { user, service, caller_id, address, uptime: sessionUptime(session, now) };
      }
    }
  }
  const user = (rows.hotspot ?? [])[0];
  if (user === undefined) return null;
  return {
    user: user.name,
    service: "hotspot",
    caller_id: user.mac ?? null,
    address: user.address ?? null,
    uptime: typeof user.uptime === "number" ? user.uptime + Math.max(0, age) : null,
  };
}

/**
 * What the view says about the customer, from each source's latest rows (`rows`) at `now`
 * (Unix seconds, the gateway's clock), `age` seconds after those frames were polled (so an
 * uptime keeps counting between frames): `{title, comment, chart, plan, rates, use, session}`.
 *
 * - `chart`: `chartRow()`; `rates`: its `[up, down]` bits/s now (an interface's rx is what the
 *   customer sent: up);
 * - `plan`: the customer's queue's `[up, down]` (null: unlimited), or null when no queue is
 *   shown (the plan is then unknown, which is not unlimited); `use`: `[up, down]` percent;
 * - `session`: `{user, service, caller_id, address, uptime}` or null; for a customer without
 *   a session (a static queue), the queue's target as its address when it is addresses.
 */
export function customerSummary(rows, { chosen = null, now = null, age = 0 } = {}) {
  const chart = chartRow(rows, chosen);
  const row = chart && (rows[chart.source] ?? []).find((r) => r.name === chart.name);
  const queue =
    chart?.source === "queues" ? row : ([...(rows.queues ?? [])].sort(byName)[0] ?? null);
  let session = sessionOf(rows, now, age);
  // A business customer on a static queue has no session: its queue's target is its address.
  const target = queue?.target;
  if (session === null && typeof target === "string" && ADDRESSES.test(target)) {
    session = { user: null, service: null, caller_id: null, address: target, uptime: null };
  }
  const comment =
    [row, queue, ...SOURCES.flatMap((source) => rows[source] ?? [])].find(
      (r) => typeof r?.comment === "string" && r.comment !== "",
    )?.comment ?? "";
  return {
    title: session?.user ?? row?.name ?? "",
    comment,
    chart,
    rates: row ? ratesOf(row, chart.source) : [null, null],
    plan: queue ? planOf(queue) : null,
    use: queue ? utilisationOf(queue) : [null, null],
    session,
  };
}
