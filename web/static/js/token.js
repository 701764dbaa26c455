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

const browserClock = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id),
};

/**
 * Where new tokens come from: the portal's token URL, or the page that embeds the dashboard.
 *
 * `obtain()` asks for one (a promise of the token, or null when there is no source or it did
 * not answer within REFRESH_TIMEOUT); `listen(onToken)` passes on tokens the embedding page
 * sends of its own accord. Nothing here throws: a source that fails is the same as none, and
 * the connection then ends when its token expires (4401), as it would without refresh.
 */
export class TokenSource {
  constructor({
    tokenUrl = "",
    embedders = [],
    fetch = globalThis.fetch?.bind(globalThis),
    window = globalThis.window,
    clock = browserClock,
  } = {}) {
    this.tokenUrl = tokenUrl;
    /** Origins allowed to frame the page (`server.allowed_frame_ancestors`). */
    this.embedders = embedders;
    this.fetch = fetch;
    this.window = window;
    this.clock = clock;
    // Resolvers of obtain() calls waiting for the embedding page's answer.
    this._waiting = [];
    this._onToken = () => {};
    this._onMessage = (event) => this._message(event);
  }

  /** Whether the page is framed by a page allowed to hand it tokens. */
  get embedded() {
    const w = this.window;
    return w?.parent !== undefined && w.parent !== w && this.embedders.length > 0;
  }

  /** Whether a new token can be asked for at all. */
  get canRefresh() {
    return Boolean(this.tokenUrl) || this.embedded;
  }

  /** Take tokens the embedding page posts (`{type: "gateway-token", token}`). */
  listen(onToken) {
    this._onToken = onToken;
    this.window?.addEventListener?.("message", this._onMessage);
  }

  /** A new token from the token URL, else from the embedding page; null when none came. */
  async obtain() {
    if (this.tokenUrl) return this._fetch();
    if (this.embedded) return this._ask();
    return null;
  }

  async _fetch() {
    const controller = new AbortController();
    const timer = this.clock.setTimeout(() => controller.abort(), REFRESH_TIMEOUT * 1000);
    try {
      // The portal knows its customer by its own session cookie: send it (credentials), and
      // never take an answer from a cache.
      const response = await this.fetch(this.tokenUrl, {
        credentials: "include",
        cache: "no-store",
        headers: { Accept: "application/json" },
        signal: controller.signal,
      });
      if (!response.ok) return null;
      const body = await response.json();
      return typeof body?.token === "string" && body.token !== "" ? body.token : null;
    } catch {
      return null; // offline, refused by CORS, not JSON, or too slow
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  _ask() {
    return new Promise((resolve) => {
      const entry = { resolve, timer: null };
      entry.timer = this.clock.setTimeout(() => {
        this._waiting = this._waiting.filter((e) => e !== entry);
        resolve(null);
      }, REFRESH_TIMEOUT * 1000);
      this._waiting.push(entry);
      // Only the allowed origins can receive it: postMessage drops it for any other parent.
      for (const origin of this.embedders) {
        try {
          this.window.parent.postMessage({ type: MESSAGE_REQUEST }, origin);
        } catch {
          // a malformed origin: the others may still match
        }
      }
    });
  }

  _message(event) {
    if (event.source !== this.window?.parent || !this.embedders.includes(event.origin)) return;
    const data = event.data;
    if (data?.type !== MESSAGE_TOKEN || typeof data.token !== "string" || data.token === "") {
      return;
    }
    const waiting = this._waiting;
    this._waiting = [];
    for (const entry of waiting) {
      this.clock.clearTimeout(entry.timer);
      entry.resolve(data.token);
    }
    if (waiting.length === 0) this._onToken(data.token);
  }
}
