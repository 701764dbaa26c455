import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { formatPercent, formatPlan } from "../static/js/format.js";
import {
  matches,
  messageSource,
  planOf,
  ratesOf,
  rowsOf,
  sessionUptime,
} from "../static/js/sources.js";
import {
  barFill,
  nextSort,
  peakUtilisation,
  TABLE_LIMIT,
  tableRows,
  topNames,
  utilisation,
  utilisationOf,
} from "../static/js/table.js";

/** A queue row as the gateway sends it (README, "Sources"); `up`/`down` in bits/s. */
function queue(name, up, down, plan = [10e6, 50e6], extra = {}) {
  const util = (rate, max) => (rate === null || max === null ? null : (rate / max) * 100);
  const [maxUp, maxDown] = plan;
  return {
    id: `*${name}`,
    name,
    target: "10.20.0.2/32",
    dynamic: false,
    disabled: false,
    up_bps: up,
    down_bps: down,
    up_pps: 1,
    down_pps: 1,
    max_up_bps: maxUp,
    max_down_bps: maxDown,
    util_up: util(up, maxUp),
    util_down: util(down, maxDown),
    ...extra,
  };
}

const user = (name, up, down, extra = {}) => ({
  id: `*${name}`,
  name,
  server: "hotspot1",
  address: "10.5.50.8",
  mac: "3C:2E:FF:00:00:07",
  uptime: 1830,
  up_bps: up,
  down_bps: down,
  up_pps: 1,
  down_pps: 1,
  ...extra,
});

describe("utilisation and plan bars", () => {
  test("utilisation is the rate as a percentage of the plan, none for an unlimited plan", () => {
    assert.equal(utilisation(5e6, 10e6), 50);
    assert.equal(utilisation(1234567, 10e6), 12.3);
    assert.equal(utilisation(12e6, 10e6), 120);
    assert.equal(utilisation(5e6, null), null, "unlimited: no percentage, not 0 %");
    assert.equal(utilisation(5e6, 0), null);
    assert.equal(utilisation(null, 10e6), null, "no rate this tick");
  });

  test("a bar fills to 100 % of the plan and no further; nothing without a figure", () => {
    assert.equal(barFill(0), 0);
    assert.equal(barFill(19.8), 0.198);
    assert.equal(barFill(100), 1);
    assert.equal(barFill(180), 1, "a burst over the plan fills the bar, no more");
    assert.equal(barFill(-3), 0);
    assert.equal(barFill(null), 0);
  });

  test("a queue's utilisation is the gateway's, or computed when the row lacks it", () => {
    const row = queue("cust0042", 1234567, 9876543.2, [10e6, 50e6]);
    row.util_up = 12.3;
    row.util_down = 19.8;
    assert.deepEqual(utilisationOf(row), [12.3, 19.8]);
    delete row.util_up;
    delete row.util_down;
    assert.deepEqual(utilisationOf(row), [12.3, 19.8]);
    assert.equal(peakUtilisation(row), 19.8);
    const unlimited = queue("cust0010", 5e6, 30e6, [null, null]);
    assert.deepEqual(utilisationOf(unlimited), [null, null]);
    assert.equal(peakUtilisation(unlimited), null);
    // A plan of 0 from an older gateway means unlimited as well.
    assert.deepEqual(planOf(queue("x", 1, 1, [0, 0])), [null, null]);
  });

  test("plans and percentages read as a NOC writes them", () => {
    assert.equal(formatPlan(10e6, 50e6), "10 Mbps / 50 Mbps");
    assert.equal(formatPlan(null, null), "unlimited");
    assert.equal(formatPlan(2e6, null), "2 Mbps / unlimited");
    assert.equal(formatPlan(1.5e9, 1e9), "1.5 Gbps / 1 Gbps");
    assert.equal(formatPercent(19.8), "20 %");
    assert.equal(formatPercent(0.4), "0.4 %");
    assert.equal(formatPercent(null), "–");
  });
});

describe("the queues table: search, sort, top by utilisation", () => {
  const rows = [
    queue("cust0002", 1e6, 45e6, [10e6, 50e6], { comment: "CID-100002 Müller" }), // 90 %
    queue("cust0010", 9e6, 80e6, [null, null], { comment: "CID-100010" }), // unlimited
    queue("cust0001", 8e6, 5e6, [10e6, 50e6], { comment: "CID-100001" }), // 80 % up
    queue("<pppoe-alice>", null, null, [5e6, 20e6], {
      dynamic: true,
      target: "<pppoe-alice>",
      session: {
        user: "alice",
        service: "pppoe",
        caller_id: "48:A9:8A:00:00:01",
        address: "100.64.0.2",
        since: 1764373277,
      },
    }),
    queue("cust0003", 0, 1e6, [2e6, 10e6], { comment: "CID-100003 suspended" }), // 10 %
  ];
  const names = (model) => model.rows.map((row) => row.name);

  test("opens with the top queues by utilisation; unlimited and rateless ones last", () => {
    const model = tableRows(rows, { source: "queues" });
    assert.deepEqual(names(model), [
      "cust0002",
      "cust0001",
      "cust0003",
      "<pppoe-alice>",
      "cust0010",
    ]);
    assert.equal(model.matched, 5);
    assert.equal(model.total, 5);
    assert.deepEqual(topNames(rows, "queues", 1), ["cust0002"]);
  });

  test("sorts by rate either way, by name A to Z, and a second click reverses", () => {
    const by = (sort) => names(tableRows(rows, { source: "queues", sort }));
    assert.deepEqual(by({ key: "down", descending: true }), [
      "cust0010",
      "cust0002",
      "cust0001",
      "cust0003",
      "<pppoe-alice>",
    ]);
    assert.deepEqual(by({ key: "up", descending: false }), [
      "cust0003",
      "cust0002",
      "cust0001",
      "cust0010",
      "<pppoe-alice>",
    ]);
    assert.deepEqual(by({ key: "name", descending: false }), [
      "<pppoe-alice>",
      "cust0001",
      "cust0002",
      "cust0003",
      "cust0010",
    ]);
    assert.deepEqual(nextSort({ key: "util", descending: true }, "util"), {
      key: "util",
      descending: false,
    });
    assert.deepEqual(nextSort({ key: "util", descending: true }, "name"), {
      key: "name",
      descending: false,
    });
    assert.deepEqual(nextSort(null, "down"), { key: "down", descending: true });
  });

  test("search finds a customer by name, comment, login, caller id or address", () => {
    const found = (query) => names(tableRows(rows, { source: "queues", query }));
    assert.deepEqual(found("müller"), ["cust0002"], "comments, case-insensitive, non-ASCII");
    assert.deepEqual(found("CID-1000"), ["cust0002", "cust0001", "cust0003", "cust0010"]);
    assert.deepEqual(found("suspended"), ["cust0003"]);
    assert.deepEqual(found("alice"), ["<pppoe-alice>"]);
    assert.deepEqual(found("48:a9:8a:00:00:01"), ["<pppoe-alice>"]);
    assert.deepEqual(found(" 100.64.0.2 "), ["<pppoe-alice>"]);
    assert.deepEqual(found("nobody"), []);
    assert.equal(tableRows(rows, { source: "queues", query: "nobody" }).total, 5);
  });

  test("draws at most the limit, and says how many matched", () => {
    const many = Array.from({ length: 250 }, (_, i) =>
      queue(`cust${String(i).padStart(4, "0")}`, i * 1000, i * 10000),
    );
    const model = tableRows(many, { source: "queues" });
    assert.equal(model.rows.length, TABLE_LIMIT);
    assert.equal(model.matched, 250);
    assert.equal(model.rows[0].name, "cust0249");
    const narrow = tableRows(many, { source: "queues", query: "cust00", limit: 5 });
    assert.equal(narrow.rows.length, 5);
    assert.equal(narrow.matched, 100);
  });
});

describe("the hotspot table and the sources' rows", () => {
  const users = [
    user("guest0001", 1e5, 2e6, { comment: "room 12" }),
    user("guest0002", 5e5, 9e6, { address: "10.5.50.9", mac: "3C:2E:FF:00:00:09" }),
    user("guest0003", null, null, { uptime: 5 }),
  ];

  test("opens busiest first; sorts by uptime; finds by room, address or MAC", () => {
    const names = (options) =>
      tableRows(users, { source: "hotspot", ...options }).rows.map((row) => row.name);
    assert.deepEqual(names({}), ["guest0002", "guest0001", "guest0003"]);
    assert.deepEqual(names({ sort: { key: "uptime", descending: false } }), [
      "guest0003",
      "guest0001",
      "guest0002",
    ]);
    assert.deepEqual(names({ query: "Room 12" }), ["guest0001"]);
    assert.deepEqual(names({ query: "10.5.50.9" }), ["guest0002"]);
    assert.deepEqual(names({ query: "00:00:09" }), ["guest0002"]);
  });

  test("rows and rates are read from the source's own keys and directions", () => {
    const frame = { type: "traffic", source: "hotspot", hotspot: users };
    assert.equal(messageSource(frame), "hotspot");
    assert.equal(messageSource({ type: "traffic" }), "interfaces", "older frames are interfaces");
    assert.equal(rowsOf(frame, "hotspot").length, 3);
    assert.deepEqual(rowsOf(frame, "interfaces"), []);
    assert.deepEqual(ratesOf(users[0], "hotspot"), [1e5, 2e6]);
    assert.deepEqual(ratesOf({ rx_bps: 5, tx_bps: null }, "interfaces"), [5, null]);
    const iface = { name: "ether1", type: "ether", comment: "uplink to core" };
    assert.ok(matches(iface, "UPLINK", "interfaces"), "interfaces are found by comment too");
    assert.ok(matches(iface, "ether", "interfaces"));
    assert.ok(!matches(iface, "core-2", "interfaces"));
  });
});

test("a PPP session's uptime counts from when it began, on the gateway's clock", () => {
  const session = { user: "alice", since: 1000 };
  assert.equal(sessionUptime(session, 4723), 3723);
  assert.equal(sessionUptime(session, 900), 0, "a clock behind the session's start: 0, not less");
  assert.equal(sessionUptime({ user: "alice", since: null }, 4723), null);
  assert.equal(sessionUptime(null, 4723), null);
});
