/**
 * The gateway's websocket protocol, client side: what to subscribe, and what the answers mean.
 * No DOM and no networking: messages go out through the injected `send`, come in through
 * `handle()`, and socket.js says when a connection opens or closes.
 *
 * Keeping the page light. A router with 300 PPPoE customers sends ~45 KB per frame, and its
 * history ring (300 frames) would be ~14 MB: far too much to pull on every page load, and more
 * than a viewer on a slow link should have to take. The chart needs history only for the few
 * charted interfaces, and only as far back as its window; the top-talkers table needs every
 * interface but only the latest frame. So each router is subscribed in two steps, both within
 * the contract, and both ask for no more than the widest window shown (`history_seconds`):
 *
 * 1. "chart": `subscribe` with `interfaces` = the charted names still missing their history
 *    for that window, each as `{"exact": name}`: a name the user picked matches that interface
 *    only, even when it holds glob characters (`ether1 [WAN]` as a glob would match `ether1 W`
 *    and not itself). The answer is the window's frames, filtered: a few hundred KB at most.
 *    With no such name (nothing charted yet) it asks for the newest frame only (`history: 1`),
 *    which tells the ring's seqs.
 * 2. "full": `subscribe` again without a filter and with `since` = the last `seq` seen, so the
 *    backfill is only the latest frame or two, and the live frames that follow are complete.
 *
 * The gateway answers subscribes in order (a `status`, then the history, or an `error`), so one
 * FIFO of pending subscribes tells which request each answer belongs to and therefore which
 * filter the live frames after it carry. A history may come in several `history` messages (each
 * under 1 MiB), every one but the last with `more: true`: their frames are recorded as they
 * come, and the answer is complete, and the next step taken, with the last one.
 *
 * Resume. After a reconnect the chart step asks for the whole (filtered) ring again rather than
 * frames after an old `seq`. Each gateway process counts `seq` from its own start time in
 * milliseconds, so the process that answers now (a restarted one, or another replica behind the
 * same address) numbers its frames independently of the one the old `seq` came from: that
 * `seq` can fall in the middle of the new process's ring, or past its newest frame, and a
 * resume from it would silently skip the start of the window, or all of it. Points are merged
 * by poll time (series.js), so frames received twice are stored once, and a history with
 * `reset: true`, or a `seq` lower than the last one, needs no special case. The full step then
 * resumes with `since` = the last `seq` seen on the current connection, which that same
 * process numbered.
 */

import { Series } from "./series.js";

/** Interfaces one chart shows at most: beyond this the lines are unreadable anyway. */
export const MAX_CHARTED = 8;

/** A subscribe `interfaces` entry that matches `name` literally (a glob would not). */
export const exactName = (name) => ({ exact: name });

/** The `error` codes that answer a subscribe (README, "Websocket protocol"). */
export const SUBSCRIBE_ERRORS = new Set([
  "bad_request",
  "unknown_router",
  "forbidden",
  "too_many_subscriptions",
]);

/** History asked for when no window is given, in seconds: the default 5-minute window. */
export const DEFAULT_SECONDS = 300;

export class RouterFeed {
  constructor(id) {
    this.id = id;
    /** Whether any running view shows this router (the subscription's demand). */
    this.wanted = false;
    /** Interfaces whose history the chart needs (the union over this router's views). */
    this.tracked = new Set();
    /** How far back the chart needs history, in seconds (the widest window of its views). */
    this.seconds = DEFAULT_SECONDS;
    this.series = new Series();
    /** The latest `status` message, or null. */
    this.status = null;
    /** The latest unfiltered traffic frame: top talkers and the interface picker read it. */
    this.latest = null;
    /** Local clock (ms) when a live frame last arrived: staleness, immune to clock skew. */
    this.latestAt = null;
    /** Server time minus local time (s), from the latest live frame; for the chart's "now". */
    this.skew = 0;
    /** The gateway's `error` for this router's subscription, or null. */
    this.refused = null;
    this.resetConnection();
  }

  /** Forget what the current connection's subscription state was (a new connection starts). */
  resetConnection() {
    /** Whether the gateway has this router subscribed on the current connection. */
    this.subscribed = false;
    /** What live frames carry now: null (nothing), "all", or the Set of filtered names. */
    this.filter = null;
    /** Subscribes sent and not answered yet. Nothing more is sent until they are. */
    this.pending = 0;
    /** Name -> seconds of history that arrived for it on this subscription. */
    this.backfilled = new Map();
    /** Whether a chart step was answered on this subscription (it tells the ring's seqs). */
    this.charted = false;
    /** Highest seq seen on this connection (any filter), and of an unfiltered frame. */
    this.lastSeq = null;
    this.lastFullSeq = null;
    /** The full step's `since` when a partial chart step interrupted the full stream. */
    this.resumeFrom = null;
  }

  get interval() {
    return this.latest?.interval ?? this.series.last?.interval ?? 1;
  }

  /** Every interface name of the latest full frame (the picker's choices). */
  names() {
    return (this.latest?.interfaces ?? []).map((iface) => iface.name);
  }

  _seen(seq, full) {
    if (this.lastSeq === null || seq > this.lastSeq) this.lastSeq = seq;
    if (full && (this.lastFullSeq === null || seq > this.lastFullSeq)) this.lastFullSeq = seq;
  }

  _record(frame, full) {
    this.series.add(frame, this.tracked);
    this._seen(frame.seq, full);
    if (full && (this.latest === null || frame.ts >= this.latest.ts)) this.latest = frame;
  }
}

export class Feed {
  /**
   * `send(message)` writes to the socket (returns false when not connected);
   * `onChange(kind, routerId)` is told about "hello", "status", "frame", "history", "refused".
   */
  constructor({ send, onChange = () => {}, now = () => Date.now() }) {
    this.send = send;
    this.onChange = onChange;
    this.now = now;
    /** Router id -> RouterFeed, created on first use; kept across reconnects (the data). */
    this.routers = new Map();
    /** `[{id, name}]` from the latest hello. */
    this.routerList = [];
    this.heartbeat = null;
    this.connected = false;
    // Subscribes awaiting their answer, oldest first: {router, kind, names}. Reset per connection.
    this._pending = [];
  }

  router(id) {
    let feed = this.routers.get(id);
    if (feed === undefined) {
      feed = new RouterFeed(id);
      this.routers.set(id, feed);
    }
    return feed;
  }

  /**
   * Declare the demand for a router: `names` to chart (an array, possibly empty), or null when
   * no running view shows it (the router is then unsubscribed, so it is not polled for us);
   * `seconds`, how far back the chart shows (the widest window of the router's views).
   */
  want(id, names, seconds = DEFAULT_SECONDS) {
    const feed = this.router(id);
    const wanted = names !== null;
    const tracked = new Set(names ?? feed.tracked);
    const same =
      wanted === feed.wanted &&
      (!wanted || seconds === feed.seconds) &&
      tracked.size === feed.tracked.size &&
      [...tracked].every((name) => feed.tracked.has(name));
    if (same) return;
    feed.wanted = wanted;
    if (wanted) feed.seconds = seconds;
    if (wanted) feed.refused = null;
    for (const name of feed.tracked) {
      // A name no longer charted stops being recorded: drop its points, or its line would
      // come back later with a hole the backfill does not know to fill.
      if (!tracked.has(name)) feed.backfilled.delete(name);
    }
    feed.tracked = tracked;
    feed.series.retain(tracked);
    this._sync(feed);
  }

  /** The socket opened: (re)subscribe everything wanted. */
  opened() {
    this.connected = true;
    this._pending = [];
    for (const feed of this.routers.values()) {
      feed.resetConnection();
      feed.refused = null;
      this._sync(feed);
    }
  }

  /** The socket closed: nothing is subscribed any more; the data stays. */
  closed() {
    this.connected = false;
    this._pending = [];
    for (const feed of this.routers.values()) feed.resetConnection();
  }

  /** One message from the gateway. */
  handle(message) {
    switch (message?.type) {
      case "hello":
        this.routerList = Array.isArray(message.routers) ? message.routers : [];
        this.heartbeat = message.heartbeat ?? null;
        this.onChange("hello", null);
        break;
      case "status": {
        const feed = this.routers.get(message.router);
        if (feed === undefined) return;
        feed.status = message;
        this.onChange("status", feed.id);
        break;
      }
      case "history":
        this._history(message);
        break;
      case "traffic":
        this._traffic(message);
        break;
      case "error":
        this._refused(message);
        break;
      case "refreshed":
        this._refreshed(message);
        break;
      default:
        // heartbeat (socket.js's watchdog has seen it), and anything a newer gateway adds
        break;
    }
  }

  _traffic(frame) {
    const feed = this.routers.get(frame.router);
    if (feed === undefined || feed.filter === null) return;
    const full = feed.filter === "all";
    feed._record(frame, full);
    const now = this.now();
    feed.latestAt = now;
    feed.skew = frame.ts - now / 1000;
    this.onChange("frame", feed.id);
  }

  /**
   * One message of a subscribe's history. Its frames are recorded at once (they are merged by
   * poll time, so order and repeats do not matter); the subscribe is answered, and the next
   * step taken, only with the last message (`more` not true): a gateway sends nothing else for
   * this connection in between, and an older gateway's single message is always the last.
   */
  _history(message) {
    const entry = this._pending[0];
    const feed = this.routers.get(message.router);
    const full = entry?.kind !== "chart";
    if (feed !== undefined) {
      for (const frame of message.frames ?? []) feed._record(frame, full);
    }
    if (message.more === true) return;
    this._pending.shift();
    if (feed === undefined) return;
    feed.pending = Math.max(0, feed.pending - 1);
    feed.filter = full ? "all" : new Set(entry.names);
    if (!full) {
      feed.charted = true;
      for (const name of entry.names) {
        feed.backfilled.set(name, Math.max(feed.backfilled.get(name) ?? 0, entry.seconds));
      }
    } else {
      feed.resumeFrom = null;
    }
    this._sync(feed);
    this.onChange("history", feed.id);
  }

  /**
   * The connection took a new token (in-band refresh). It may show fewer routers: those it
   * unsubscribed are marked refused, and the router list follows the new token.
   */
  _refreshed(message) {
    if (Array.isArray(message.routers)) this.routerList = message.routers;
    for (const id of message.unsubscribed ?? []) {
      const feed = this.routers.get(id);
      if (feed === undefined) continue;
      feed.resetConnection();
      feed.refused = { code: "forbidden", message: "the new token does not cover this router" };
      this.onChange("refused", id);
    }
    this.onChange("hello", null);
  }

  _refused(message) {
    // Only these answer a subscribe; others (a refused token refresh, a message over the rate
    // limit) are about the connection, not about a router's subscription.
    if (!SUBSCRIBE_ERRORS.has(message.code)) return;
    const entry = this._pending.shift();
    if (entry === undefined) return; // not an answer to a subscribe: nothing to undo
    const feed = this.routers.get(entry.router);
    if (feed === undefined) return;
    feed.pending = Math.max(0, feed.pending - 1);
    feed.refused = { code: message.code, message: message.message };
    if (feed.filter === null) feed.subscribed = false;
    this.onChange("refused", feed.id);
  }

  /** Send whatever brings the gateway's subscription in line with the demand, one step. */
  _sync(feed) {
    if (!this.connected || feed.pending > 0 || feed.refused !== null) return;
    if (!feed.wanted) {
      if (feed.subscribed) {
        this.send({ type: "unsubscribe", router: feed.id });
        feed.resetConnection(); // the data (series, latest) stays for a later Start
      }
      return;
    }
    const seconds = feed.seconds;
    const missing = [...feed.tracked].filter(
      (name) => (feed.backfilled.get(name) ?? -1) < seconds,
    );
    if (!feed.charted || missing.length > 0) {
      // Charted names that are not re-fetched now lose the full stream for a moment: the
      // full step resumes from the last complete frame so they keep every point.
      if (feed.filter === "all" && feed.lastFullSeq !== null) feed.resumeFrom = feed.lastFullSeq;
      // With no name to backfill, the newest frame is enough: it tells the ring's seqs.
      const limit = missing.length > 0 ? { history_seconds: seconds } : { history: 1 };
      const interfaces = missing.map(exactName);
      this._subscribe(feed, "chart", { interfaces, ...limit }, missing, seconds);
    } else if (feed.filter !== "all") {
      // Only the latest frame is needed in full (the top talkers); the chart has the rest.
      // The window bounds it even when `since` has left the ring (a reset sends what is kept).
      const since = feed.resumeFrom ?? Math.max(0, (feed.lastSeq ?? 0) - 1);
      this._subscribe(feed, "full", { since, history_seconds: seconds }, null, seconds);
    }
  }

  _subscribe(feed, kind, fields, names, seconds) {
    if (!this.send({ type: "subscribe", router: feed.id, ...fields })) return;
    feed.subscribed = true;
    feed.pending += 1;
    this._pending.push({ router: feed.id, kind, names, seconds });
  }
}
