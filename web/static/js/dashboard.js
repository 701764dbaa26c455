/**
 * Rendering: the header, and one panel per view (toolbar with the source switch, chart,
 * figures, and for interfaces the picker and top talkers, for queues and hotspot users their
 * table). No networking and no protocol: main.js hands each panel its view and its topic's
 * feed, and the panel calls back with what the user asked for.
 */

import { SERIES_COLOURS, TrafficChart } from "./chart.js";
import { MAX_CHARTED } from "./feed.js";
import { compareNames, formatBps, formatDuration, formatPlan } from "./format.js";
import { element, RowsTable } from "./rowtable.js";
import { byRate, totalRate } from "./series.js";
import { commentOf, DEFAULT_SOURCE, matches, planOf, SOURCE_INFO, SOURCES } from "./sources.js";

/** Picker rows rendered at most; the search narrows the rest (hundreds of PPPoE sessions). */
export const PICKER_LIMIT = 80;

/** Set a badge element's kind and words (text and the longer detail). */
export function paintBadge(node, { kind, text, detail }) {
  node.dataset.kind = kind;
  node.querySelector(".badge-text").textContent = text;
  node.querySelector(".badge-detail").textContent = detail ? detail : "";
}

/** The page header: connection badge, retry, add view, theme. */
export class Header {
  constructor({ onAddView, onRetry, onTheme }) {
    this.badge = document.getElementById("connection");
    this.retry = document.getElementById("retry");
    this.retry.addEventListener("click", onRetry);
    document.getElementById("add-view").addEventListener("click", onAddView);
    const theme = document.getElementById("theme");
    theme.value = document.documentElement.dataset.themePref ?? "auto";
    theme.addEventListener("change", () => onTheme(theme.value));
  }

  update(badge, terminal) {
    paintBadge(this.badge, badge);
    this.retry.hidden = !terminal;
  }
}

/**
 * One view's panel. `actions`: setRouter(id), setSource(source), setWindow(minutes),
 * toggleName(name, on) (chart a row of the view's source, or stop), toggleRunning(), remove().
 */
export class ViewPanel {
  constructor(template, actions) {
    this.actions = actions;
    this.root = template.content.firstElementChild.cloneNode(true);
    const $ = (selector) => this.root.querySelector(selector);
    this.routerSelect = $(".router-select");
    this.sourceSwitch = $(".source-switch");
    this.sourceButtons = [...this.root.querySelectorAll("[data-source]")];
    this.nameHead = $(".stats .name-head");
    this.dirHeads = [$(".stats .dir-0"), $(".stats .dir-1")];
    this.sideCol = $(".side-col");
    this.rowsTable = new RowsTable($(".rows"), {
      toggle: (name, on) => actions.toggleName(name, on),
    });
    this.windowButtons = [...this.root.querySelectorAll("[data-window]")];
    this.startStop = $(".start-stop");
    this.badge = $(".view-badge");
    this.removeButton = $(".remove-view");
    this.chartBox = $(".chart");
    this.readout = $(".readout");
    this.coverage = $(".coverage");
    this.statsBody = $(".stats tbody");
    this.search = $(".picker input");
    this.pickerNote = $(".picker-note");
    this.pickerList = $(".picker-list");
    this.talkersBody = $(".talkers tbody");
    this.talkersCount = $(".talkers-count");
    this.talkersBox = $(".talkers .table-scroll");

    this.chart = new TrafficChart(this.chartBox, {
      range: () => this._xRange(),
      onCursor: (text) => {
        this.readout.textContent = text;
      },
      height: () => (window.matchMedia("(max-width: 700px)").matches ? 200 : 300),
    });
    this.pickerKey = ""; // the names, selection and query the picker list shows
    this.talkerRows = new Map(); // interface name -> its <tr>, reused across frames
    this.talkersFrozen = false; // row order holds still while the pointer is over the table
    // What was last drawn, to skip work when nothing changed.
    this.rendered = { statsKey: null, talkers: null, talkerSelection: null };
    this.statsRows = new Map(); // charted name -> its figures row, rebuilt when names change
    this.state = null;

    this.routerSelect.addEventListener("change", () =>
      actions.setRouter(this.routerSelect.value),
    );
    for (const button of this.windowButtons) {
      button.addEventListener("click", () => actions.setWindow(Number(button.dataset.window)));
    }
    for (const button of this.sourceButtons) {
      button.addEventListener("click", () => actions.setSource(button.dataset.source));
    }
    this.startStop.addEventListener("click", () => actions.toggleRunning());
    this.removeButton.addEventListener("click", () => actions.remove());
    this.search.addEventListener("input", () => this._renderPicker(true));
    this.pickerList.addEventListener("change", (event) => {
      const box = event.target;
      if (box.matches("input[type=checkbox]")) {
        actions.toggleName(box.value, box.checked);
      }
    });
    this.statsBody.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-name]");
      if (button) actions.toggleName(button.dataset.name, false);
    });
    this.talkersBody.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-name]");
      if (button) {
        const on = button.getAttribute("aria-pressed") !== "true";
        actions.toggleName(button.dataset.name, on);
      }
    });
    const freeze = (frozen) => () => {
      this.talkersFrozen = frozen;
    };
    this.talkersBox.addEventListener("pointerenter", freeze(true));
    this.talkersBox.addEventListener("pointerleave", freeze(false));
  }

  destroy() {
    this.chart.destroy();
    this.root.remove();
  }

  /** Theme changed: charts read their colours from CSS, so rebuild on the next update. */
  restyle() {
    this.chart.restyle();
  }

  /**
   * state: {view, routers, sources, feed, badge, now (server Unix seconds)}.
   * `feed` is the RouterFeed of the view's router and source (or null before the gateway
   * listed the routers); `sources`, those the view's router serves (null: not known yet).
   */
  update(state) {
    this.state = state;
    const { view, routers, feed, badge } = state;
    this._renderBar(view, routers, state.sources);
    paintBadge(this.badge, badge);
    // The figures dim while they are not current (router down, stale, reconnecting, stopped).
    this.root.dataset.state = badge.kind;
    this.root.dataset.source = view.source;
    const info = SOURCE_INFO[view.source];
    const what = view.source === DEFAULT_SOURCE ? "" : `, ${info.plural}`;
    this.root.setAttribute("aria-label", `View of ${routerName(routers, view.router)}${what}`);
    if (feed === null) return;
    const names = view.names ?? [];
    const interfaces = view.source === DEFAULT_SOURCE;
    this._renderChart(view, feed, names, state.now);
    this._renderStats(view, feed, names);
    this.sideCol.hidden = !interfaces;
    this.rowsTable.root.hidden = interfaces;
    if (interfaces) {
      this._renderPicker(false);
      this._renderTalkers(view, feed);
    } else {
      this.rowsTable.update({ source: view.source, feed, charted: names });
    }
  }

  _renderBar(view, routers, sources) {
    const wanted = routers.map((r) => `${r.id}\n${r.name}`).join("\n");
    if (this.routerSelect.dataset.options !== wanted) {
      this.routerSelect.replaceChildren(
        ...routers.map((r) =>
          element("option", { value: r.id }, routerLabel(r)),
        ),
      );
      this.routerSelect.dataset.options = wanted;
    }
    if (view.router !== null && !routers.some((r) => r.id === view.router)) {
      // A router the gateway does not list (a shared link from another setup): say so.
      const label = `${view.router} (unknown)`;
      this.routerSelect.append(element("option", { value: view.router }, label));
      this.routerSelect.dataset.options = "";
    }
    if (view.router !== null) this.routerSelect.value = view.router;
    for (const button of this.windowButtons) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.window) === view.window));
    }
    // The switch offers what the router serves (and the view's own source, whatever it is).
    const offered = new Set(sources ?? [DEFAULT_SOURCE]);
    offered.add(view.source);
    for (const button of this.sourceButtons) {
      button.hidden = !offered.has(button.dataset.source);
      button.setAttribute("aria-pressed", String(button.dataset.source === view.source));
    }
    this.sourceSwitch.hidden = SOURCES.filter((source) => offered.has(source)).length < 2;
    this.startStop.textContent = view.running ? "Stop monitor" : "Start monitor";
    this.startStop.classList.toggle("primary", !view.running);
  }

  // -- chart ----------------------------------------------------------------------------------

  _xRange() {
    const { view, feed, now } = this.state;
    const span = view.window * 60;
    const first = feed?.series.first?.ts ?? now;
    // Fit what exists when it is less than the window (a fresh gateway has little history),
    // rather than squeezing a few seconds of data against the right edge.
    return [Math.max(now - span, Math.min(first, now - 10)), now];
  }

  _renderChart(view, feed, names, now) {
    const source = view.source;
    const plan = source === "queues";
    const info = SOURCE_INFO[source];
    const [dirA, dirB] = info.dirs;
    const [from] = this._xRange();
    this.chart.draw({
      names,
      dirs: info.dirs,
      plan,
      columns: feed.series.columns(names, from, { plan }),
    });
    this.chartBox.setAttribute(
      "aria-label",
      names.length
        ? `Traffic chart, last ${view.window} min: ${dirA} and ${dirB} of ${names.join(", ")}` +
            (plan ? ", with their plans" : "")
        : `Traffic chart: no ${info.noun} chosen`,
    );
    const first = feed.series.first?.ts;
    const covered = first === undefined ? 0 : now - first;
    this.coverage.textContent =
      feed.latest !== null && covered + 3 * feed.interval < view.window * 60
        ? `Data for the last ${formatDuration(covered)} only (all the gateway had kept); ` +
          `the ${view.window} min window fills in while this page stays open.`
        : "";
    if (!this.chart.pointing) {
      const hint =
        source === DEFAULT_SOURCE
          ? "Choose interfaces to chart under Interfaces, or click one in Top talkers."
          : `Click a row of the table below to chart that ${info.noun}.`;
      const plans = plan ? ", plan dotted" : "";
      this.readout.textContent = names.length
        ? `${dirA} solid, ${dirB} dashed${plans}. Point at the chart for exact values.`
        : hint;
    }
  }

  // -- figures --------------------------------------------------------------------------------

  _renderStats(view, feed, names) {
    const [from] = this._xRange();
    const source = view.source;
    const info = SOURCE_INFO[source];
    const key = `${source}\n${names.join("\n")}`;
    if (key !== this.rendered.statsKey) {
      // Rows are rebuilt only when the charted names change, so a click on a row's button
      // never lands on a node that the next frame replaced.
      this.rendered.statsKey = key;
      this.nameHead.textContent = info.noun[0].toUpperCase() + info.noun.slice(1);
      info.dirTitles.forEach((title, i) => {
        this.dirHeads[i].textContent = title;
      });
      this.statsRows = new Map(names.map((name, k) => [name, this._statsRow(name, k)]));
      const rows = [...this.statsRows.values()];
      if (rows.length === 0) {
        const hint =
          source === DEFAULT_SOURCE
            ? "No interface charted yet: pick one under Interfaces or Top talkers."
            : `No ${info.noun} charted yet: click one in the table below.`;
        rows.push(element("tr", {}, element("td", { colSpan: 8, class: "muted empty" }, hint)));
      }
      this.statsBody.replaceChildren(...rows);
    }
    const byName = new Map(feed.rows().map((row) => [row.name, row]));
    for (const [name, row] of this.statsRows) {
      const current = byName.get(name);
      // Gone from the router (a PPPoE customer who hung up): it has no current rate.
      const gone = feed.latest !== null && current === undefined;
      const stats = feed.series.stats(name, from);
      const figures = info.dirs.flatMap((dir) =>
        ["now", "avg", "peak"].map((figure) =>
          gone && figure === "now" ? null : (stats?.[dir][figure] ?? null),
        ),
      );
      figures.forEach((value, i) => {
        row.cells[1 + i].textContent = formatBps(value);
      });
      const notes = [];
      if (gone) notes.push("gone");
      else if (current?.running === false) notes.push("not running");
      else if (current?.disabled === true) notes.push("disabled");
      if (source === "queues" && (current !== undefined || feed.series.last !== null)) {
        notes.push(`plan ${formatPlan(...(current ? planOf(current) : feed.series.plan(name)))}`);
      }
      row.querySelector(".note").textContent = notes.join(", ");
      if (current !== undefined) row.querySelector(".comment").textContent = commentOf(current);
    }
  }

  _statsRow(name, k) {
    const swatch = element("span", { class: "swatch", "aria-hidden": "true" });
    swatch.style.setProperty("--colour", `var(--series-${k % SERIES_COLOURS})`);
    const label = element(
      "th",
      { scope: "row", class: "name" },
      swatch,
      element("span", {}, name),
      element("span", { class: "comment" }),
      element("span", { class: "muted note" }),
    );
    const cells = ["now", "avg", "peak", "now", "avg", "peak"].map((figure) =>
      element("td", { class: `num ${figure}` }),
    );
    const remove = element(
      "button",
      { type: "button", class: "icon", dataset: { name }, "aria-label": `Stop charting ${name}` },
      "×",
    );
    return element("tr", { dataset: { name } }, label, ...cells, element("td", {}, remove));
  }

  // -- picker ---------------------------------------------------------------------------------

  _renderPicker(fromInput) {
    const { view, feed } = this.state ?? {};
    if (!feed) return;
    if (view.source !== DEFAULT_SOURCE) return;
    const selected = new Set(view.names ?? []);
    const query = this.search.value.trim().toLowerCase();
    const interfaces = feed.rows();
    const key = [
      query,
      [...selected].join(","),
      interfaces.map((i) => `${i.name}/${i.running}/${commentOf(i)}`).join(","),
    ].join("\n");
    if (key === this.pickerKey && !fromInput) return;
    this.pickerKey = key;
    // Name, type, comment, and a PPP customer's login, caller id and address.
    const found = interfaces
      .filter((i) => matches(i, query, DEFAULT_SOURCE))
      .sort(
        // Without a search, what is charted comes first: with hundreds of customers it would
        // otherwise sit pages down the list. A search lists matches in name order only.
        (a, b) =>
          (query ? 0 : Number(selected.has(b.name)) - Number(selected.has(a.name))) ||
          compareNames(a.name, b.name),
      );
    const full = selected.size >= MAX_CHARTED;
    const shown = found.slice(0, PICKER_LIMIT);
    this.pickerList.replaceChildren(
      ...shown.map((iface) => {
        const on = selected.has(iface.name);
        const box = element("input", {
          type: "checkbox",
          value: iface.name,
          checked: on,
          disabled: full && !on,
        });
        return element(
          "li",
          { class: iface.running ? "" : "down" },
          element(
            "label",
            {},
            box,
            element("span", { class: "name" }, iface.name),
            element("span", { class: "comment" }, commentOf(iface)),
            element(
              "span",
              { class: "type" },
              iface.running ? iface.type : `${iface.type}, not running`,
            ),
          ),
        );
      }),
    );
    const notes = [];
    if (interfaces.length === 0) notes.push("Waiting for the router's interface list…");
    else if (found.length === 0) notes.push(`No interface matches “${this.search.value}”.`);
    else if (found.length > shown.length) {
      notes.push(`Showing ${shown.length} of ${found.length}; type to narrow the list.`);
    } else notes.push(`${found.length} of ${interfaces.length} interfaces.`);
    if (full) notes.push(`At most ${MAX_CHARTED} per chart.`);
    this.pickerNote.textContent = notes.join(" ");
  }

  // -- top talkers ----------------------------------------------------------------------------

  _renderTalkers(view, feed) {
    const frame = feed.latest;
    if (frame === null) {
      this.talkersCount.textContent = "";
      return;
    }
    if (this.rendered.talkers === frame && this.rendered.talkerSelection === view.names) {
      return;
    }
    this.rendered.talkers = frame;
    this.rendered.talkerSelection = view.names;
    const selected = new Set(view.names ?? []);
    const sorted = byRate(frame);
    const top = Math.max(1, ...sorted.map((i) => Math.max(i.rx_bps ?? 0, i.tx_bps ?? 0)));
    const rows = this.talkerRows;
    const seen = new Set();
    sorted.forEach((iface, rank) => {
      seen.add(iface.name);
      let row = rows.get(iface.name);
      if (row === undefined) {
        row = this._talkerRow(iface.name);
        rows.set(iface.name, row);
      }
      const [rankCell, nameCell, rxCell, txCell] = row.cells;
      // While the order holds still under the pointer, so do the ranks.
      if (!this.talkersFrozen) rankCell.textContent = totalRate(iface) < 0 ? "" : String(rank + 1);
      const button = nameCell.firstElementChild;
      button.setAttribute("aria-pressed", String(selected.has(iface.name)));
      button.disabled = !selected.has(iface.name) && selected.size >= MAX_CHARTED;
      nameCell.querySelector(".comment").textContent = commentOf(iface);
      nameCell.querySelector(".type").textContent = iface.type;
      row.classList.toggle("down", !iface.running);
      rxCell.textContent = formatBps(iface.rx_bps);
      txCell.textContent = formatBps(iface.tx_bps);
      rxCell.style.setProperty("--share", String((iface.rx_bps ?? 0) / top));
      txCell.style.setProperty("--share", String((iface.tx_bps ?? 0) / top));
    });
    for (const [name, row] of rows) {
      if (!seen.has(name)) {
        row.remove();
        rows.delete(name);
      }
    }
    if (!this.talkersFrozen || this.talkersBody.children.length !== sorted.length) {
      this.talkersBody.append(...sorted.map((iface) => rows.get(iface.name)));
    }
    const running = frame.interfaces.filter((i) => i.running).length;
    this.talkersCount.textContent = `${frame.interfaces.length} interfaces, ${running} running`;
  }

  _talkerRow(name) {
    const button = element(
      "button",
      { type: "button", class: "link", dataset: { name }, title: `Chart ${name}` },
      name,
    );
    return element(
      "tr",
      {},
      element("td", { class: "num rank" }),
      element(
        "th",
        { scope: "row", class: "name" },
        button,
        element("span", { class: "comment" }),
        element("span", { class: "type" }),
      ),
      element("td", { class: "num bar rx" }),
      element("td", { class: "num bar tx" }),
    );
  }
}

function routerLabel(router) {
  return router.name && router.name !== router.id ? `${router.name} (${router.id})` : router.id;
}

function routerName(routers, id) {
  return routers.find((r) => r.id === id)?.name ?? id ?? "router";
}
