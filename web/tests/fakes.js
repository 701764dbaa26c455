/** Test doubles for socket.js: a clock whose time moves only when told, and a fake WebSocket. */

export class FakeClock {
  constructor() {
    this.t = 0;
    this.timers = new Map();
    this.nextId = 1;
  }

  now() {
    return this.t;
  }

  setTimeout(fn, ms) {
    const id = this.nextId++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }

  clearTimeout(id) {
    this.timers.delete(id);
  }

  /** Move time forward by `ms`, firing due timers in order (each at its own time). */
  advance(ms) {
    const target = this.t + ms;
    for (;;) {
      let next = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= target && (next === null || timer.at < next[1].at)) next = [id, timer];
      }
      if (next === null) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = target;
  }

  /** Milliseconds until the earliest pending timer, or null. */
  nextTimer() {
    const ats = [...this.timers.values()].map((timer) => timer.at);
    return ats.length ? Math.min(...ats) - this.t : null;
  }
}

/** Records every instance; tests drive each one's open, messages and close. */
export function fakeWebSocketClass() {
  const instances = [];
  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.closedWith = null;
      instances.push(this);
    }

    send(text) {
      this.sent.push(JSON.parse(text));
    }

    close(code, reason) {
      this.closedWith = { code, reason };
    }

    // -- what the server (the test) does --
    serverOpen() {
      this.onopen?.({});
    }

    serverSend(message) {
      this.onmessage?.({ data: JSON.stringify(message) });
    }

    serverClose(code, reason = "") {
      this.onclose?.({ code, reason });
    }
  }
  return { FakeWebSocket, instances };
}

/** A minimal EventTarget standing in for window / document. */
export class FakeTarget extends EventTarget {
  constructor(props = {}) {
    super();
    Object.assign(this, props);
  }
}

/** Returns `values` in turn, then repeats the last one: a scripted Math.random. */
export function scriptedRandom(...values) {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)];
}
