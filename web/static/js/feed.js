/**
 * The gateway's websocket protocol, client side: what to subscribe, and what the answers mean.
 * No DOM and no networking: messages go out through the injected `send`, come in through
 * `handle()`, and socket.js says when a connection opens or closes.
 *
 * A subscription is to one source of one router (a *topic*: its interfaces, simple queues or
 * hotspot users; README, "Sources"), and each topic is followed on its own: its data, its
 * status, its subscription steps. An `interfaces` subscribe names no `source` and filters with
 * `interfaces`, as before sources existed; the others send `source` and `names`.
 *
 * Keeping the page light. A router with 300 PPPoE customers sends ~45 KB per frame, and its
 * history ring (300 frames) would be ~14 MB: far too much to pull on every page load, and more
 * than a viewer on a slow link should have to take. The chart needs history only for the few
 * charted rows, and only as far back as its window; the tables (top talkers, queues, hotspot
 * users) need every row but only the latest frame. So each topic is subscribed in two steps,
 * both within the contract, and both ask for no more than the widest window shown
 * (`history_seconds`):
 *
 * 1. "chart": `subscribe` with `interfaces` (or `names`) = the charted names still missing their
 *    history for that window, each as `{"exact": name}`: a name the user picked matches that
 *    row only, even when it holds glob characters (`ether1 [WAN]` as a glob would match
 *    `ether1 W` and not itself). The answer is the window's frames, filtered: a few hundred KB
 *    at most. With no such name (nothing charted yet) it asks for the newest frame only
 *    (`history: 1`), which tells the ring's seqs.
 * 2. "full": `subscribe` again without a filter and with `since` = the last `seq` seen, so the
 *    backfill is only the latest frame or two, and the live frames that follow are complete.
 *
 * A topic in "rows" mode (the customer view: `watchRows`) has one step: its names (or none,
 * when the token alone says which rows a viewer sees), with the window's history, and nothing
 * wider ever.
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
import { DEFAULT_SOURCE, messageSource, rowsOf, SOURCES } from "./sources.js";

/** Rows one chart shows at most: beyond this the lines are unreadable anyway. */
export const MAX_CHARTED = 8;

/** A subscribe `interfaces`/`names` entry that matches `name` literally (a glob would not). */
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

/** The key of a topic (one source of one router) in `Feed.topics`. */
export const topicKey = (router, source = DEFAULT_SOURCE) => `${source}:${router}`;

/** One source of one router: its data (kept across reconnects) and its subscription. */
export class RouterFeed {
  constructor(id, source = DEFAULT_SOURCE) {
    this.id = id;
    this.source = source;
    /** Whether any running view shows this topic (the subscription's demand). */
    this.wanted = false;
    /**
     * "table" (the chart's names, then every row's latest frame) or "rows" (only the names,
     * or every row the token shows when `tracked` is null, with their history).
     */
    this.mode = "table";
    /** Rows whose history the chart needs (the union over this topic's views); null: all. */
    this.tracked = new Set();
    /** How far back the chart needs history, in seconds (the widest window of its views). */
    this.seconds = DEFAULT_SECONDS;
    this.series = new Series(undefined, source);
    /** The latest `status` message, or null. */
    this.status = null;
    /** The latest unfiltered traffic frame: the tables and the picker read it. */
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
    /** In "rows" mode: what the answered subscribe asked for (names and seconds), or null. */
    this.asked = null;
  }

  get interval() {
    return this.latest?.interval ?? this.series.last?.interval ?? 1;
  }

  /** The rows of the latest full frame (every interface, queue or user the viewer sees). */
  rows() {
    return rowsOf(this.latest, this.source);
  }

  /** Every row name of the latest full frame (the picker's choices). */
  names() {
    return this.rows().map((row) => row.name);
  }

  _seen(seq, full) {
    if (this.lastSeq === null || seq > this.lastSeq) this.lastSeq = seq;
    if (full && (this.lastFullSeq === null || seq > this.lastFullSeq)) this.lastFullSeq = seq;
  }

  _record(frame, full) {
    this.series.add(frame, this.mode === "rows" ? null : this.tracked);
    this._seen(frame.seq, full);
    if (full && (this.latest === null || frame.ts >= this.latest.ts)) this.latest = frame;
  }
}

export class Feed {
  /**
   * `send(message)` writes to the socket (returns false when not connected);
   * `onChange(kind, routerId, source)` is told about "hello", "status", "frame", "history",
   * "refused".
   */
  constructor({ send, onChange = () => {}, now = () => Date.now() }) {
    this.send = send;
    this.onChange = onChange;
    this.now = now;
    /** topicKey(router, source) -> RouterFeed, created on first use; kept across reconnects. */
    this.topics = new Map();
    /** `[{id, name}]` from the latest hello. */
    this.routerList = [];
    this.heartbeat = null;
    this.connected = false;
    // Subscribes awaiting their answer, oldest first: {router, source, kind, names, seconds}.
    // Reset per connection.
    this._pending = [];
  }

  /** A router's topic of `source`, created on first use. */
  topic(id, source = DEFAULT_SOURCE) {
    const key = topicKey(id, source);
    let feed = this.topics.get(key);
    if (feed === undefined) {
      feed = new RouterFeed(id, source);
      this.topics.set(key, feed);
    }
    return feed;
  }

  /** A router's topic of `source` if the page has one, else undefined (never creates one). */
  get(id, source = DEFAULT_SOURCE) {
    return this.topics.get(topicKey(id, source));
  }

  /** The `interfaces` topic of a router (created on first use). */
  router(id) {
    return this.topic(id, DEFAULT_SOURCE);
  }

  /** Router id -> its `interfaces` topic: the routers the page has asked about. */
  get routers() {
    const routers = new Map();
    for (const feed of this.topics.values()) {
      if (feed.source === DEFAULT_SOURCE) routers.set(feed.id, feed);
    }
    return routers;
  }

  /**
   * Declare the demand for one source of a router, for a table and its chart: `names` to chart
   * (an array, possibly empty), or null when no running view shows it (the topic is then
   * unsubscribed, so the router is not polled for it on our behalf); `seconds`, how far back
   * the chart shows (the widest window of the topic's views).
   */
  want(id, names, seconds = DEFAULT_SECONDS, source = DEFAULT_SOURCE) {
    this._want(this.topic(id, source), "table", names === null ? null : new Set(names), seconds);
  }

  /**
   * Declare the demand for some rows of one source of a router, with their history and nothing
   * else (the customer view): `names` an array of row names, or null for every row the viewer's
   * token shows; `seconds` of history. Stop with `want(id, null, 0, source)`.
   */
  watchRows(id, source, names, seconds = DEFAULT_SECONDS) {
    this._want(this.topic(id, source), "rows", names === null ? "all" : new Set(names), seconds);
  }

  _want(feed, mode, names, seconds) {
    const wanted = names !== null;
    const tracked = names === "all" ? null : (names ?? feed.tracked);
    const sameNames =
      tracked === feed.tracked ||
      (tracked !== null &&
        feed.tracked !== null &&
        tracked.size === feed.tracked.size &&
        [...tracked].every((name) => feed.tracked.has(name)));
    const same =
      wanted === feed.wanted &&
      (!wanted || (seconds === feed.seconds && mode === feed.mode)) &&
      sameNames;
    if (same) return;
    feed.wanted = wanted;
    if (wanted) {
      feed.seconds = seconds;
      feed.mode = mode;
      feed.refused = null;
    }
    if (feed.tracked !== null) {
      for (const name of feed.tracked) {
        // A name no longer charted stops being recorded: drop its points, or its line would
        // come back later with a hole the backfill does not know to fill.
        if (tracked === null || !tracked.has(name)) feed.backfilled.delete(name);
      }
    }
    feed.tracked = tracked;
    if (tracked !== null) feed.series.retain(tracked);
    this._sync(feed);
  }

  /** The socket opened: (re)subscribe everything wanted. */
  opened() {
    this.connected = true;
    this._pending = [];
    for (const feed of this.topics.values()) {
      feed.resetConnection();
      feed.refused = null;
    }
    for (const feed of this.topics.values()) this._sync(feed);
  }

  /** The socket closed: nothing is subscribed any more; the data stays. */
  closed() {
    this.connected = false;
    this._pending = [];
    for (const feed of this.topics.values()) feed.resetConnection();
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
        const feed = this.get(message.router, messageSource(message));
        if (feed === undefined) return;
        feed.status = message;
        this.onChange("status", feed.id, feed.source);
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
    const feed = this.get(frame.router, messageSource(frame));
    if (feed === undefined || feed.filter === null) return;
    const full = feed.filter === "all";
    feed._record(frame, full);
    const now = this.now();
    feed.latestAt = now;
    feed.skew = frame.ts - now / 1000;
    this.onChange("frame", feed.id, feed.source);
  }

  /**
   * One message of a subscribe's history. Its frames are recorded at once (they are merged by
   * poll time, so order and repeats do not matter); the subscribe is answered, and the next
   * step taken, only with the last message (`more` not true): a gateway sends nothing else for
   * this connection in between, and an older gateway's single message is always the last.
   */
  _history(message) {
    const entry = this._pending[0];
    const feed = this.get(message.router, messageSource(message));
    // A "rows" subscribe's frames are all its viewer shows: complete, as a full step's are.
    const full = entry?.kind !== "chart";
    if (feed !== undefined) {
      for (const frame of message.frames ?? []) feed._record(frame, full);
    }
    if (message.more === true) return;
    this._pending.shift();
    if (feed === undefined) return;
    feed.pending = Math.max(0, feed.pending - 1);
    feed.filter = full ? "all" : new Set(entry.names);
    if (entry?.kind === "chart") {
      feed.charted = true;
      for (const name of entry.names) {
        feed.backfilled.set(name, Math.max(feed.backfilled.get(name) ?? 0, entry.seconds));
      }
    } else if (entry?.kind === "rows") {
      feed.asked = entry.asked;
    } else {
      feed.resumeFrom = null;
    }
    this._sync(feed);
    this.onChange("history", feed.id, feed.source);
  }

  /**
   * The connection took a new token (in-band refresh). It may show fewer routers: those it
   * unsubscribed are marked refused, and the router list follows the new token.
   */
  _refreshed(message) {
    if (Array.isArray(message.routers)) this.routerList = message.routers;
    for (const id of message.unsubscribed ?? []) {
      for (const source of SOURCES) {
        const feed = this.get(id, source);
        if (feed === undefined) continue;
        feed.resetConnection();
        feed.refused = { code: "forbidden", message: "the new token does not cover this router" };
        this.onChange("refused", id, source);
      }
    }
    this.onChange("hello", null);
  }

  _refused(message) {
    // Only these answer a subscribe; others (a refused token refresh, a message over the rate
    // limit) are about the connection, not about a router's subscription.
    if (!SUBSCRIBE_ERRORS.has(message.code)) return;
    const entry = this._pending.shift();
    if (entry === undefined) return; // not an answer to a subscribe: nothing to undo
    const feed = this.get(entry.router, entry.source);
    if (feed === undefined) return;
    feed.pending = Math.max(0, feed.pending - 1);
    feed.refused = { code: message.code, message: message.message };
    if (feed.filter === null) feed.subscribed = false;
    this.onChange("refused", feed.id, feed.source);
  }

  /** Send whatever brings the gateway's subscription in line with the demand, one step. */
  _sync(feed) {
    if (!this.connected || feed.pending > 0 || feed.refused !== null) return;
    if (!feed.wanted) {
      if (feed.subscribed) {
        this.send(this._unsubscribe(feed));
        feed.resetConnection(); // the data (series, latest) stays for a later Start
      }
      return;
    }
    if (feed.mode === "rows") {
      this._syncRows(feed);
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
      const filter = this._filter(feed, missing);
      this._subscribe(feed, "chart", { ...filter, ...limit }, missing, seconds);
    } else if (feed.filter !== "all") {
      // Only the latest frame is needed in full (the top talkers); the chart has the rest.
      // The window bounds it even when `since` has left the ring (a reset sends what is kept).
      const since = feed.resumeFrom ?? Math.max(0, (feed.lastSeq ?? 0) - 1);
      const fields = { ...this._filter(feed, null), since, history_seconds: seconds };
      this._subscribe(feed, "full", fields, null, seconds);
    }
  }

  /**
   * "rows" mode: one subscribe for the names (or every row the token shows) with the window's
   * history; again only when the names or the window change (a wider window fetches the
   * history again: points merge by poll time).
   */
  _syncRows(feed) {
    const names = feed.tracked === null ? null : [...feed.tracked];
    const asked = `${names === null ? "*" : JSON.stringify(names)}\n${feed.seconds}`;
    if (feed.asked === asked) return;
    const fields = { ...this._filter(feed, names), history_seconds: feed.seconds };
    this._subscribe(feed, "rows", fields, names ?? [], feed.seconds, asked);
  }

  /**
   * The subscribe's source and filter fields for `names` (null: no filter). Interfaces are
   * asked for as before sources existed (no `source`, the filter under `interfaces`), which
   * every gateway understands; other sources name themselves and filter with `names`.
   */
  _filter(feed, names) {
    const interfaces = feed.source === DEFAULT_SOURCE;
    const fields = interfaces ? {} : { source: feed.source };
    if (names !== null) fields[interfaces ? "interfaces" : "names"] = names.map(exactName);
    return fields;
  }

  /**
   * The unsubscribe for a topic. It names its source unless it is `interfaces` and the router
   * has no other source subscribed on this connection: then the two mean the same (an
   * unsubscribe without a source ends every subscription to the router), and the shorter one is
   * also what a gateway from before sources understands.
   */
  _unsubscribe(feed) {
    const others = SOURCES.some(
      (source) => source !== feed.source && this.get(feed.id, source)?.subscribed,
    );
    if (feed.source === DEFAULT_SOURCE && !others) return { type: "unsubscribe", router: feed.id };
    return { type: "unsubscribe", router: feed.id, source: feed.source };
  }

  _subscribe(feed, kind, fields, names, seconds, asked = null) {
    if (!this.send({ type: "subscribe", router: feed.id, ...fields })) return;
    feed.subscribed = true;
    feed.pending += 1;
    this._pending.push({ router: feed.id, source: feed.source, kind, names, seconds, asked });
  }
}
