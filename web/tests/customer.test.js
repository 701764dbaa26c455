import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  chartRow,
  customerRequest,
  customerSummary,
  scopedSources,
  tokenClaims,
  watchPlan,
} from "../static/js/customer.js";

/** An unsigned JWT carrying `claims` (the page never checks signatures: the gateway does). */
function jwt(claims) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "HS256", typ: "JWT" })}.${part(claims)}.c2lnbmF0dXJl`;
}

const ALL = ["interfaces", "queues", "hotspot"];

describe("what the customer view watches", () => {
  test("the address names the router, the customer's rows and the window", () => {
    const request = customerRequest(
      "?router=isp-bras&queue=cust0042&interface=%3Cpppoe-alice%3E&hotspot=alice&window=15",
    );
    assert.deepEqual(request, {
      router: "isp-bras",
      names: { interfaces: ["<pppoe-alice>"], queues: ["cust0042"], hotspot: ["alice"] },
      window: 15,
    });
    assert.deepEqual(customerRequest(""), {
      router: null,
      names: { interfaces: [], queues: [], hotspot: [] },
      window: 5,
    });
    assert.equal(customerRequest("?window=7").window, 5, "only the windows offered");
  });

  test("a customer's token: every source it names for the router, rows left to the token", () => {
    const claims = tokenClaims(
      jwt({
        sub: "customer-4711",
        routers: ["isp-bras"],
        interfaces: { "isp-bras": [{ exact: "<pppoe-alice>" }] },
        queues: { "isp-bras": [{ exact: "<pppoe-alice>" }] },
      }),
    );
    assert.deepEqual([...scopedSources(claims, "isp-bras")], ["interfaces", "queues"]);
    const plan = watchPlan({
      router: "isp-bras",
      served: ALL,
      request: customerRequest(""),
      claims,
    });
    assert.deepEqual([...plan.watch], [
      ["interfaces", null],
      ["queues", null],
    ]);
    assert.equal(plan.reason, "");
    // A source the router does not serve is not asked for.
    const narrow = watchPlan({
      router: "isp-bras",
      served: ["interfaces"],
      request: customerRequest(""),
      claims,
    });
    assert.deepEqual([...narrow.watch.keys()], ["interfaces"]);
  });

  test("a token that shows a router whole, or no token, with no row named: nothing at all", () => {
    for (const claims of [
      tokenClaims(jwt({ sub: "noc", routers: "*" })),
      tokenClaims(jwt({ sub: "c", routers: ["a"], queues: { other: ["x"] } })),
      null,
    ]) {
      const plan = watchPlan({ router: "a", served: ALL, request: customerRequest(""), claims });
      assert.equal(plan.watch.size, 0);
      assert.match(plan.reason, /one customer/);
    }
  });

  test("rows named in the address are watched by name, whatever the token", () => {
    const plan = watchPlan({
      router: "isp-bras",
      served: ["interfaces", "queues"],
      request: customerRequest("?queue=cust0042&hotspot=alice"),
      claims: null,
    });
    assert.deepEqual([...plan.watch], [["queues", ["cust0042"]]]);
  });

  test("anything but a JWT has no claims", () => {
    for (const token of [null, "", "abc", "a.b", "a.!!!.c", `a.${btoa("[1]")}.c`]) {
      assert.equal(tokenClaims(token), null, String(token));
    }
    const claims = tokenClaims(jwt({ sub: "Müller" }));
    assert.equal(claims.sub, "Müller", "UTF-8 claims");
  });
});

describe("what the customer view says", () => {
  const session = {
    user: "alice",
    service: "pppoe",
    caller_id: "48:A9:8A:00:00:01",
    address: "100.64.0.2",
    since: 1764373277,
  };
  const queue = {
    id: "*2B",
    name: "<pppoe-alice>",
    target: "<pppoe-alice>",
    dynamic: true,
    disabled: false,
    up_bps: 1e6,
    down_bps: 9e6,
    max_up_bps: 5e6,
    max_down_bps: 20e6,
    util_up: 20,
    util_down: 45,
    session,
  };
  const iface = {
    id: "*1A3",
    name: "<pppoe-alice>",
    type: "pppoe-in",
    running: true,
    disabled: false,
    rx_bps: 1.1e6,
    tx_bps: 9.1e6,
    comment: "CID-100001",
    session,
  };

  test("a PPPoE customer: the queue's chart and plan, the session's login, MAC and uptime", () => {
    const summary = customerSummary({ interfaces: [iface], queues: [queue], hotspot: [] }, {
      now: 1764373277 + 3725.5,
      age: 2.5,
    });
    assert.deepEqual(summary, {
      title: "alice",
      comment: "CID-100001",
      chart: { source: "queues", name: "<pppoe-alice>" },
      rates: [1e6, 9e6],
      plan: [5e6, 20e6],
      use: [20, 45],
      session: {
        user: "alice",
        service: "pppoe",
        caller_id: "48:A9:8A:00:00:01",
        address: "100.64.0.2",
        uptime: 3725.5,
      },
    });
  });

  test("an interface alone: its rates as the customer's (rx is what it sent), plan unknown", () => {
    const summary = customerSummary({ interfaces: [iface], queues: [], hotspot: [] });
    assert.deepEqual(summary.chart, { source: "interfaces", name: "<pppoe-alice>" });
    assert.deepEqual(summary.rates, [1.1e6, 9.1e6]);
    assert.equal(summary.plan, null, "no queue: the plan is not known (which is not unlimited)");
    assert.deepEqual(summary.use, [null, null]);
  });

  test("a hotspot user: its login, address, MAC and uptime", () => {
    const user = {
      id: "*5",
      name: "guest0007",
      server: "hotspot1",
      address: "10.5.50.8",
      mac: "3C:2E:FF:00:00:07",
      uptime: 1830,
      comment: "room 12",
      up_bps: 180000,
      down_bps: 2400000,
    };
    const summary = customerSummary({ hotspot: [user] }, { now: 5000, age: 1.5 });
    assert.equal(summary.title, "guest0007");
    assert.equal(summary.comment, "room 12");
    assert.deepEqual(summary.chart, { source: "hotspot", name: "guest0007" });
    assert.deepEqual(summary.session, {
      user: "guest0007",
      service: "hotspot",
      caller_id: "3C:2E:FF:00:00:07",
      address: "10.5.50.8",
      uptime: 1831.5,
    });
  });

  test("an unlimited plan is unlimited; nothing shown is nothing known", () => {
    const open = { ...queue, max_up_bps: null, max_down_bps: null, util_up: null, util_down: null };
    assert.deepEqual(customerSummary({ queues: [open] }).plan, [null, null]);
    const none = customerSummary({ interfaces: [], queues: [], hotspot: [] });
    assert.equal(none.chart, null);
    assert.equal(none.session, null);
    assert.equal(none.title, "");
  });

  test("the row chosen stays charted while it exists", () => {
    const rows = { interfaces: [iface], queues: [queue] };
    assert.deepEqual(chartRow(rows, { source: "interfaces", name: "<pppoe-alice>" }), {
      source: "interfaces",
      name: "<pppoe-alice>",
    });
    assert.deepEqual(chartRow(rows, { source: "interfaces", name: "gone" }), {
      source: "queues",
      name: "<pppoe-alice>",
    });
  });

  test("a business customer on a static queue: its target is its address, no session", () => {
    const fixed = { ...queue, name: "cust0042", target: "10.20.0.43/32", dynamic: false };
    delete fixed.session;
    const summary = customerSummary({ queues: [fixed] }, { now: 5000 });
    assert.equal(summary.title, "cust0042");
    assert.deepEqual(summary.session, {
      user: null,
      service: null,
      caller_id: null,
      address: "10.20.0.43/32",
      uptime: null,
    });
    const onInterface = { ...fixed, target: "ether5" };
    assert.equal(customerSummary({ queues: [onInterface] }).session, null);
  });
});
