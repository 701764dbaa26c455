/**
 * The viewer's token: where the page finds it, and how it gets a new one before it expires.
 * No DOM beyond what is injected; the browser tests and web/tests/token.test.js drive it.
 *
 * Where the token comes from (README, "Security"), best first:
 *
 * 1. The URL's fragment, `https://gateway/#token=...`: a fragment never leaves the browser (it is
 *    not sent to the gateway or any proxy, so it is in no access log, and never in a `Referer`).
 * 2. A message from the page that embeds the dashboard in a frame (`postMessage`), from an
 *    origin the gateway allows to frame it (`server.allowed_frame_ancestors`):
 *    `{"type": "gateway-token", "token": "..."}`. The page asks its parent with
 *    `{"type": "gateway-token-request"}` when it needs one.
 * 3. The portal's token URL (`auth.token_url`), fetched with the browser's cookies: the portal
 *    answers `{"token": "..."}` for its logged-in customer.
 * 4. The query, `?token=...`: still read, but discouraged, as the request for the page carries
 *    it to the gateway and to every proxy's access log on the way.
 *
 * Whichever it was, the token is taken out of the address bar at once (`history.replaceState`),
 * so it is not bookmarked, shared with the view's URL, or kept in the history. The page then
 * sends it as the websocket's first message, `{"type": "auth", "token": ...}`, never in a URL.
 */

/** The URL parameter, in the fragment or the query, that carries a token. */
export const TOKEN_PARAM = "token";

/** The `postMessage` types between the dashboard and the page that embeds it. */
export const MESSAGE_TOKEN = "gateway-token";
export const MESSAGE_REQUEST = "gateway-token-request";

/** Seconds a request for a new token (token URL or parent page) may take. */
export const REFRESH_TIMEOUT = 10;

function decode(text) {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
}

/** `part` (a query or fragment without its `?`/`#`) without `name`: `{value, rest}`. */
function strip(part, name) {
  let value = null;
  const kept = [];
  for (const pair of part.split("&")) {
    if (pair === "") continue;
    const at = pair.indexOf("=");
    const key = at < 0 ? pair : pair.slice(0, at);
    if (decode(key) !== name) kept.push(pair);
    else if (value === null) value = decode(at < 0 ? "" : pair.slice(at + 1));
  }
  return { value, rest: kept.join("&") };
}

/**
 * The token in a page URL (`href`), and the URL to show instead: `{token, cleaned}`.
 * `cleaned` (a path, query and fragment) is null when the URL holds no token, so there is
 * nothing to rewrite. A token in the fragment wins over one in the query; both are removed,
 * and every other parameter (the views) stays exactly as it was written.
 */
export function takeToken(href) {
  const url = new URL(href);
  const query = strip(url.search.slice(1), TOKEN_PARAM);
  const fragment = strip(url.hash.slice(1), TOKEN_PARAM);
  if (query.value === null && fragment.value === null) return { token: null, cleaned: null };
  const token = fragment.value || query.value || null;
  const search = query.rest ? `?${query.rest}` : "";
  const hash = fragment.rest ? `#${fragment.rest}` : "";
  return { token, cleaned: `${url.pathname}${search}${hash}` };
}
