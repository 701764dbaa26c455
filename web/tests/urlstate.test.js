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
    { router: "isp-bras", window: 15, interfaces: ["sfp1", "<pppoe-a,b>", "x~y", "caf é/1%"] },
    { router: "office", window: 1, interfaces: [] },
    { router: "tower-3", window: 5, interfaces: null },
  ];
  const search = formatSearch("", views);
  assert.deepEqual(parseViews(search), views);
  assert.match(search, /^\?view=isp-bras~15m~sfp1,%3Cpppoe-a%2Cb%3E,x%7Ey,/);
  assert.equal(formatView(views[2]), "tower-3~5m");
});

test("no view in the URL means one default view on the first router", () => {
  assert.deepEqual(parseViews(""), [{ router: null, window: DEFAULT_WINDOW, interfaces: null }]);
  assert.deepEqual(parseViews("?token=abc"), parseViews(""));
});

test("hand-edited values fall back to something sensible", () => {
  assert.deepEqual(parseView("office~7m~a,,a,b"), {
    router: "office",
    window: DEFAULT_WINDOW,
    interfaces: ["a", "b"],
  });
  assert.deepEqual(parseView("office~1m~ether%ZZ"), {
    router: "office",
    window: 1,
    interfaces: ["ether%ZZ"],
  });
  const many = Array.from({ length: 20 }, (_, i) => `e${i}`).join(",");
  assert.equal(parseView(`r~5m~${many}`).interfaces.length, MAX_CHARTED);
});

test("other parameters stay where they are", () => {
  const search = formatSearch("?lang=de&view=old~1m&debug", [
    { router: "office", window: 5, interfaces: ["ether1"] },
  ]);
  assert.equal(search, "?lang=de&debug&view=office~5m~ether1");
});
