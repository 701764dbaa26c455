import assert from "node:assert/strict";
import { test } from "node:test";

import { takeToken } from "../static/js/token.js";

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
