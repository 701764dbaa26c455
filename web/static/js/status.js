/**
 * The words on the state badges. Pure: state in, `{kind, text, detail}` out.
 *
 * `kind` picks the colour (live, pending, reconnecting, stale, down, stopped); `text` is what
 * the badge says, always in words, so the state never hangs on colour alone; `detail` is the
 * longer reason, shown next to it.
 */

import { formatClock, formatDuration } from "./format.js";

/**
 * Seconds of silence, beyond two poll intervals, after which data counts as stale: the
 * gateway's default command deadline (README, "Websocket protocol": a frame is stale after
 * 2 x interval + timeout).
 */
export const STALE_GRACE = 3;

/** The gateway connection, as the header shows it. */
export function connectionBadge(socket) {
  const why = socket.lastClose?.why ?? "";
  switch (socket.state) {
    case "open":
      return { kind: "live", text: "Live", detail: "" };
    case "waiting":
      return {
        kind: "reconnecting",
        text: `Reconnecting in ${socket.secondsToRetry()} s`,
        detail: why,
      };
    case "stopped":
      return {
        kind: "down",
        text: "Disconnected",
        detail: `${why} (code ${socket.lastClose?.code})`,
      };
    default:
      return socket.lastClose === null
        ? { kind: "pending", text: "Connecting…", detail: "" }
        : { kind: "reconnecting", text: "Reconnecting…", detail: why };
  }
}

/** One view: its router's state as this page knows it, most urgent first. */
export function viewBadge({ running, socket, feed, now }) {
  if (!running) {
    return {
      kind: "stopped",
      text: "Stopped",
      detail: "the router is not polled for this page; Start monitor resumes",
    };
  }
  if (socket.state !== "open") return connectionBadge(socket);
  if (feed.refused !== null) {
    return { kind: "down", text: "Refused by the gateway", detail: feed.refused.message };
  }
  const status = feed.status;
  if (status?.state === "down") {
    return {
      kind: "down",
      text: `Router down since ${formatClock(status.since)}`,
      detail: status.error ?? "no reason given",
    };
  }
  if (feed.latestAt === null) {
    const detail = status?.state === "up" ? "waiting for the first poll" : "";
    return { kind: "pending", text: "Connecting to the router…", detail };
  }
  const age = (now - feed.latestAt) / 1000;
  if (age > 2 * feed.interval + STALE_GRACE || feed.latest?.stale) {
    return {
      kind: "stale",
      text: "Stale data",
      detail: `last update ${formatDuration(age)} ago`,
    };
  }
  return { kind: "live", text: "Live", detail: "" };
}
