import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_CHARTED } from "../static/js/feed.js";
import {
  DEFAULT_WINDOW,
  formatSearch,
  formatView,
  parseView,
  parseViews,
} from "../static/js/urlstate.js";

test("views round-trip through the URL, awkward names included", () => {
  const views = [
    {
      router: "isp-bras",
      source: "interfaces",
      window: 15,
      names: ["sfp1", "<pppoe-a,b>", "x~y", "caf é/1%"],
    },
    { router: "office", source: "interfaces", window: 1, names: [] },
    { router: "tower-3", source: "interfaces", window: 5, names: null },
  ];
  const search = formatSearch("", views);
  assert.deepEqual(parseViews(search), views);
  assert.match(search, /^\?view=isp-bras~15m~sfp1,%3Cpppoe-a%2Cb%3E,x%7Ey,/);
  assert.equal(formatView(views[2]), "tower-3~5m");
});

test("a view of queues or hotspot users keeps its source; interfaces leave it out", () => {
  const views = [
    { router: "isp-bras", source: "queues", window: 1, names: ["cust0007", "<pppoe-a>"] },
    { router: "office", source: "hotspot", window: 5, names: null },
    { router: "queues", source: "interfaces", window: 5, names: ["ether1"] },
  ];
  const search = formatSearch("", views);
  assert.equal(
    search,
    "?view=isp-bras~queues~1m~cust0007,%3Cpppoe-a%3E&view=office~hotspot~5m&view=queues~5m~ether1",
  );
  assert.deepEqual(parseViews(search), views);
  // A URL from before sources existed means interfaces, as it always did.
  assert.equal(parseView("office~1m~ether1").source, "interfaces");
});

test("no view in the URL means one default view on the first router", () => {
  assert.deepEqual(parseViews(""), [
    { router: null, source: "interfaces", window: DEFAULT_WINDOW, names: null },
  ]);
  assert.deepEqual(parseViews("?token=abc"), parseViews(""));
});

test("hand-edited values fall back to something sensible", () => {
  assert.deepEqual(parseView("office~7m~a,,a,b"), {
    router: "office",
    source: "interfaces",
    window: DEFAULT_WINDOW,
    names: ["a", "b"],
  });
  assert.deepEqual(parseView("office~1m~ether%ZZ"), {
    router: "office",
    source: "interfaces",
    window: 1,
    names: ["ether%ZZ"],
  });
  // An unknown source is not a source: the part is read as the window, which falls back.
  assert.deepEqual(parseView("office~pppoe~1m"), {
    router: "office",
    source: "interfaces",
    window: DEFAULT_WINDOW,
    names: ["1m"],
  });
  const many = Array.from({ length: 20 }, (_, i) => `e${i}`).join(",");
  assert.equal(parseView(`r~5m~${many}`).names.length, MAX_CHARTED);
});

test("other parameters stay where they are", () => {
  const search = formatSearch("?lang=de&view=old~1m&debug", [
    { router: "office", source: "interfaces", window: 5, names: ["ether1"] },
  ]);
  assert.equal(search, "?lang=de&debug&view=office~5m~ether1");
});
