/**
 * The page's link to the gateway: its token and its websocket, shared by the dashboard
 * (main.js) and the customer view (customer-main.js).
 *
 * The token is read once from the page's URL (fragment or query) and taken out of the address
 * bar before anything else reads it; it travels only in the websocket's first message
 * (token.js, README "Security"). Before it expires the gateway asks for a new one
 * (`refresh_needed`), which comes from the portal's token URL or the embedding page and is sent
 * in-band (`refresh`): the connection goes on without a reconnect. A connection closed for its
 * token (4401) is tried once more with a new token, when one can be had.
 */

import { CLOSE, ReconnectingSocket } from "./socket.js";
import { TokenSource, takeToken } from "./token.js";

/** What the gateway tells the page (README, "Security"): where new tokens come from. */
export function pageConfig(doc = document) {
  try {
    return JSON.parse(doc.getElementById("gateway-config")?.textContent ?? "{}");
  } catch {
    return {};
  }
}

function socketUrl() {
  const url = new URL("/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

/**
 * `onMessage(message)` gets every message from the gateway; `onOpen()`/`onClose()` say when a
 * connection opens or ends; `onChange()` any change of the socket's state (for badges).
 * `start()` connects (after asking for a token when the URL brought none and one can be had).
 */
export class GatewayLink {
  constructor({ onMessage, onOpen = () => {}, onClose = () => {}, onChange = () => {} }) {
    const config = pageConfig();
    const taken = takeToken(location.href);
    if (taken.cleaned !== null) history.replaceState(history.state, "", taken.cleaned);
    /** The viewer's token, or null (auth mode "none", or none obtained yet). */
    this.token = taken.token;
    this.tokens = new TokenSource({
      tokenUrl: config.tokenUrl ?? "",
      embedders: Array.isArray(config.embedders) ? config.embedders : [],
    });
    // The pending request for a new token, so one request serves every reason to ask.
    this._renewing = null;
    this._wasOpen = false;
    this._callbacks = { onMessage, onOpen, onClose, onChange };
    this.socket = new ReconnectingSocket({
      url: socketUrl(),
      onMessage: (message) => this._received(message),
      onChange: () => this._socketChanged(),
      firstMessage: () => (this.token === null ? null : { type: "auth", token: this.token }),
    });
    // A token the embedding page sends of its own accord replaces the connection's at once.
    this.tokens.listen((fresh) => {
      if (fresh === this.token) return;
      this.token = fresh;
      if (this.socket.state === "open") this.socket.send({ type: "refresh", token: fresh });
      else if (this.socket.state === "stopped") this.socket.retryNow();
    });
  }

  /** Write a message; false when not connected. */
  send(message) {
    return this.socket.send(message);
  }

  start() {
    // Without a token in the URL, a framed or portal-served page asks for one before connecting.
    if (this.token === null && this.tokens.canRefresh) {
      this.renewToken().finally(() => this.socket.start());
    } else {
      this.socket.start();
    }
  }

  /** Get a new token (token URL or embedding page); true when it differs from the current one. */
  renewToken() {
    this._renewing ??= this.tokens.obtain().then((fresh) => {
      this._renewing = null;
      if (fresh === null || fresh === this.token) return false;
      this.token = fresh;
      return true;
    });
    return this._renewing;
  }

  _received(message) {
    if (message?.type === "refresh_needed") {
      // The token expires soon: a new one extends this connection in place, no reconnect.
      this.renewToken().then(
        (fresh) => fresh && this.socket.send({ type: "refresh", token: this.token }),
      );
    }
    this._callbacks.onMessage(message);
  }

  _socketChanged() {
    const socket = this.socket;
    const open = socket.state === "open";
    if (open && !this._wasOpen) this._callbacks.onOpen();
    else if (!open && this._wasOpen) this._callbacks.onClose();
    this._wasOpen = open;
    if (socket.state === "stopped" && socket.lastClose?.code === CLOSE.BAD_TOKEN) {
      // Refused or expired: with a source of new tokens, try once more with a new one (only a
      // token different from the refused one, so a portal that keeps answering it ends here).
      this.renewToken().then((fresh) => fresh && socket.retryNow());
    }
    this._callbacks.onChange();
  }
}

/**
 * Which sources each router serves (README, "HTTP endpoints": `/api/routers`), for the token's
 * routers: a Map of router id -> sources, or null when the gateway did not answer within
 * `seconds`. A gateway from before sources lists none: each router then serves interfaces.
 */
export async function routerSources(token, sources, seconds = 10) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), seconds * 1000);
  try {
    const headers = { Accept: "application/json" };
    if (token !== null) headers.Authorization = `Bearer ${token}`;
    const response = await fetch("/api/routers", {
      headers,
      cache: "no-store",
      signal: controller.signal,
    });
    if (!response.ok) return null;
    const body = await response.json();
    const served = new Map();
    for (const router of body?.routers ?? []) {
      served.set(
        router.id,
        Array.isArray(router.sources)
          ? router.sources.filter((source) => sources.includes(source))
          : [sources[0]],
      );
    }
    return served;
  } catch {
    return null; // offline, or too slow
  } finally {
    clearTimeout(timer);
  }
}
