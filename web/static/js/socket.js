/**
 * The websocket to the gateway and its reconnect policy, and nothing else.
 *
 * What to (re)subscribe after a connection opens is not decided here: that belongs to
 * feed.js, which is told about every open and close and resumes each subscription from the
 * last `seq` it saw. This module only decides *when* to connect:
 *
 * - exponential backoff with full jitter: the n-th retry waits a uniformly random time in
 *   [0, min(cap, base * factor^n)] seconds (base 0.5 s, factor 2, cap 20 s), so a gateway that
 *   restarts under thousands of viewers is not hit by all of them at the same instant;
 * - the retry count resets once a connection has stayed healthy for HEALTHY_AFTER seconds, not
 *   merely opened (a gateway that accepts and closes at once must not cause a tight loop);
 * - the first message on every connection can be one the page chooses (`firstMessage`: the
 *   token, `{"type": "auth", ...}`), sent before anything else;
 * - terminal close codes (1008 origin not allowed, 4401 bad token) stop retrying and say why;
 * - 1013 (a connection limit) and 4429 (the message rate) wait longer: never less than
 *   TRY_AGAIN_FLOOR, three doublings ahead;
 * - the browser coming back `online`, or the tab becoming visible, tries at once;
 * - a watchdog closes and reconnects when nothing (frame or heartbeat) arrives for two
 *   heartbeat periods: websocket pings are invisible to page scripts, so a connection that died
 *   without a FIN (a NAT timeout, a sleeping laptop) is otherwise noticed only by TCP, minutes
 *   later.
 *
 * Everything with a side effect (the WebSocket class, timers, the clock, randomness, the window
 * and document events) is injected, so the policy runs under Node's test runner with fakes.
 */

/**
 * The reconnect delays, in seconds (README, "The dashboard": full jitter, base 0.5 s, factor 2,
 * cap 20 s).
 */
export const POLICY = Object.freeze({ base: 0.5, factor: 2, cap: 20 });

/** Seconds a connection must stay open before the retry count starts again from zero. */
export const HEALTHY_AFTER = 10;

/** Seconds a new connection gets to open and say hello before it is abandoned. */
export const OPEN_TIMEOUT = 10;

/** The heartbeat period assumed until the server's hello says otherwise, in seconds. */
export const DEFAULT_HEARTBEAT = 20;

/** After 1013 (connection limit) never retry sooner than this many seconds... */
export const TRY_AGAIN_FLOOR = 2;
/** ...and start this many doublings further along the backoff sequence. */
export const TRY_AGAIN_HEAD_START = 3;

/**
 * The codes the gateway closes a connection with: the README's "Close codes" table, whose
 * source is `CloseCode` in gateway/wire.py (a test there checks this object and the decisions
 * below against it).
 */
export const CLOSE = Object.freeze({
  GOING_AWAY: 1001,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  TRY_AGAIN_LATER: 1013,
  BAD_TOKEN: 4401,
  SLOW_CONSUMER: 4408,
  TOO_MANY_MESSAGES: 4429,
});

/** The close code this client uses when its watchdog gives up on a silent connection. */
export const CLOSE_WATCHDOG = 4000;

const TERMINAL = new Map([
  [
    CLOSE.POLICY_VIOLATION,
    "the gateway does not accept connections from this page's address (origin)",
  ],
  [
    CLOSE.BAD_TOKEN,
    "the access token is missing, invalid or expired; open the page with a new token",
  ],
]);

/** Codes after which retrying soon would meet the same limit: back off longer. */
const SLOW = new Set([CLOSE.TRY_AGAIN_LATER, CLOSE.TOO_MANY_MESSAGES]);

const RETRY_REASONS = new Map([
  [1000, "the gateway closed the connection"],
  [CLOSE.GOING_AWAY, "the gateway is restarting"],
  [1006, "the connection to the gateway was lost"],
  [CLOSE.MESSAGE_TOO_BIG, "a message was too large"],
  [CLOSE.INTERNAL_ERROR, "the gateway had an internal error"],
  [CLOSE.TRY_AGAIN_LATER, "the gateway is at a connection limit"],
  [CLOSE.SLOW_CONSUMER, "the connection was too slow to keep up"],
  [CLOSE.TOO_MANY_MESSAGES, "the page sent messages faster than the gateway allows"],
  [CLOSE_WATCHDOG, "nothing arrived from the gateway for two heartbeat periods"],
]);

/** The upper bound of the n-th retry's delay (n from 0), in seconds. */
export function backoffBound(attempt, policy = POLICY) {
  return Math.min(policy.cap, policy.base * policy.factor ** attempt);
}

/** The n-th retry's delay with full jitter: uniform in [0, backoffBound(n)), in seconds. */
export function backoffDelay(attempt, random = Math.random, policy = POLICY) {
  return random() * backoffBound(attempt, policy);
}

/** The n-th retry's delay after 1013 or 4429: in [TRY_AGAIN_FLOOR, bound of n + 3), capped. */
export function tryAgainDelay(attempt, random = Math.random, policy = POLICY) {
  const bound = Math.max(
    TRY_AGAIN_FLOOR,
    backoffBound(attempt + TRY_AGAIN_HEAD_START, policy),
  );
  return TRY_AGAIN_FLOOR + random() * (bound - TRY_AGAIN_FLOOR);
}

/**
 * What to do after a close: `{action: "retry" | "slow" | "stop", why}`.
 * `stop` is terminal (retrying cannot help); `slow` is the longer backoff of 1013 and 4429.
 */
export function closeDecision(code) {
  if (TERMINAL.has(code)) return { action: "stop", why: TERMINAL.get(code) };
  const why = RETRY_REASONS.get(code) ?? `the connection closed (code ${code})`;
  return { action: SLOW.has(code) ? "slow" : "retry", why };
}

/** The delay before the next try after a close with `code`, in seconds; null when terminal. */
export function retryDelay(code, attempt, random = Math.random, policy = POLICY) {
  const { action } = closeDecision(code);
  if (action === "stop") return null;
  return action === "slow"
    ? tryAgainDelay(attempt, random, policy)
    : backoffDelay(attempt, random, policy);
}

const browserClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id),
};

/**
 * One websocket to the gateway that keeps itself connected.
 *
 * States: `connecting` (a socket is opening), `open`, `waiting` (until `retryAt`, a clock
 * time in ms), `stopped` (a terminal close; only `retryNow()` starts again).
 * `onMessage(message)` gets every parsed JSON message; `onChange(socket)` is called on every
 * state change, including each open (resubscribe then) and each close.
 */
export class ReconnectingSocket {
  constructor({
    url,
    onMessage,
    onChange = () => {},
    firstMessage = () => null,
    WebSocket = globalThis.WebSocket,
    clock = browserClock,
    random = Math.random,
    policy = POLICY,
    events = { window: globalThis.window, document: globalThis.document },
  }) {
    this.url = url;
    this.onMessage = onMessage;
    /** Called on every open: the message to send before anything else (the auth), or null. */
    this.firstMessage = firstMessage;
    this.onChange = onChange;
    this.WebSocket = WebSocket;
    this.clock = clock;
    this.random = random;
    this.policy = policy;
    this.events = events;
    this.state = "idle";
    /** Retries since the last healthy connection; the next delay's exponent. */
    this.attempt = 0;
    /** When the next try starts (clock ms), while `waiting`. */
    this.retryAt = null;
    /** The last close: `{code, reason, why}`; null before any. */
    this.lastClose = null;
    /** Seconds between server heartbeats, from the hello. */
    this.heartbeat = DEFAULT_HEARTBEAT;
    this.connections = 0;
    // The live WebSocket, if any; replaced on every try, dropped (handlers detached) on close.
    this._ws = null;
    // One timer per purpose, each cleared whenever its purpose ends.
    this._retryTimer = null; // fires the next try while waiting
    this._watchdog = null; // re-armed by every message; fires after two heartbeats of silence
    this._healthyTimer = null; // resets the retry count once the connection proved healthy
    // Local time (clock ms) of the last message: a tab coming back to the foreground checks it,
    // because browsers delay timers in background tabs and the watchdog may not have run.
    this._lastMessageAt = null;
    this._onOnline = () => this._wake();
    this._onVisible = () => {
      if (this.events.document?.visibilityState === "visible") this._wake();
    };
  }

  /** Connect, and keep reconnecting. */
  start() {
    this.events.window?.addEventListener?.("online", this._onOnline);
    this.events.document?.addEventListener?.("visibilitychange", this._onVisible);
    this._connect();
  }

  /** Try now: a waiting socket skips its delay; a stopped one starts over (user's choice). */
  retryNow() {
    if (this.state === "waiting" || this.state === "stopped") {
      this._clearTimer("_retryTimer");
      this._connect();
    }
  }

  /** Send one message as JSON; false when not connected (feed.js resends on the next open). */
  send(message) {
    if (this.state !== "open") return false;
    this._ws.send(JSON.stringify(message));
    return true;
  }

  /** Seconds until the next try (rounded up), while waiting. */
  secondsToRetry() {
    if (this.state !== "waiting") return null;
    return Math.max(0, Math.ceil((this.retryAt - this.clock.now()) / 1000));
  }

  _wake() {
    if (this.state === "waiting") {
      this.retryNow();
    } else if (
      this.state === "open" &&
      this.clock.now() - this._lastMessageAt >= 2 * this.heartbeat * 1000
    ) {
      this._abandon();
      this.retryNow();
    }
  }

  _connect() {
    this.state = "connecting";
    this.retryAt = null;
    let ws;
    try {
      ws = new this.WebSocket(this.url);
    } catch (error) {
      // A malformed URL throws; retrying with backoff at least keeps the page honest about it.
      this._closed(1006, String(error));
      return;
    }
    this._ws = ws;
    this.connections += 1;
    ws.onopen = () => {
      // Before anyone else may send (onChange below resubscribes): a gateway in jwt mode
      // reads the token from the first message and sends nothing until it has it.
      const first = this.firstMessage();
      if (first !== null) ws.send(JSON.stringify(first));
      this.state = "open";
      this._lastMessageAt = this.clock.now();
      this._arm("_healthyTimer", HEALTHY_AFTER, () => {
        this.attempt = 0;
      });
      this.onChange(this);
    };
    ws.onmessage = (event) => this._received(event.data);
    ws.onclose = (event) => this._closed(event.code, event.reason);
    ws.onerror = () => {}; // a close event always follows, with the code
    // Until the hello arrives, the watchdog doubles as the open timeout.
    this._arm("_watchdog", OPEN_TIMEOUT, () => this._abandon());
    this.onChange(this);
  }

  _received(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return; // the gateway sends JSON only; anything else is ignored, not fatal
    }
    this._lastMessageAt = this.clock.now();
    if (message?.type === "hello" && Number(message.heartbeat) > 0) {
      this.heartbeat = Number(message.heartbeat);
    }
    this._arm("_watchdog", 2 * this.heartbeat, () => this._abandon());
    this.onMessage(message);
  }

  /** The watchdog's way out: stop waiting for a close handshake a dead peer will never send. */
  _abandon() {
    const ws = this._ws;
    if (ws === null) return;
    try {
      ws.close(CLOSE_WATCHDOG, "watchdog");
    } catch {
      // already closing; the handlers are detached below either way
    }
    this._closed(CLOSE_WATCHDOG, "watchdog");
  }

  _closed(code, reason) {
    const ws = this._ws;
    if (ws !== null) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      this._ws = null;
    }
    this._clearTimer("_watchdog");
    this._clearTimer("_healthyTimer");
    const { why } = closeDecision(code);
    this.lastClose = { code, reason: reason || "", why };
    const delay = retryDelay(code, this.attempt, this.random, this.policy);
    if (delay === null) {
      this.state = "stopped";
      this.attempt = 0;
    } else {
      this.attempt += 1;
      this.state = "waiting";
      this.retryAt = this.clock.now() + delay * 1000;
      this._arm("_retryTimer", delay, () => this._connect());
    }
    this.onChange(this);
  }

  _arm(name, seconds, fn) {
    this._clearTimer(name);
    this[name] = this.clock.setTimeout(() => {
      this[name] = null;
      fn();
    }, seconds * 1000);
  }

  _clearTimer(name) {
    if (this[name] !== null) {
      this.clock.clearTimeout(this[name]);
      this[name] = null;
    }
  }
}
