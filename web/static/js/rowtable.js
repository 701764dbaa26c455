/**
 * Rendering of the queues and hotspot-users tables: sortable headers, search, a bar per rate
 * to 100 % of the plan, a button per row that charts it. The order, the search and the bars
 * are table.js's (pure); this module only draws them. No networking and no protocol.
 */

import { MAX_CHARTED } from "./feed.js";
import {
  formatBps,
  formatDuration,
  formatPercent,
  formatPlan,
  formatText,
} from "./format.js";
import { commentOf, planOf, ratesOf, SOURCE_INFO, sessionUptime } from "./sources.js";
import {
  barFill,
  DEFAULT_SORT,
  nextSort,
  peakUtilisation,
  tableRows,
  utilisationOf,
} from "./table.js";

/** At or above this utilisation (percent) a bar shows the plan as nearly used up. */
export const HIGH_USE = 90;

/** A new element: `props` set as properties (`class`, `dataset`, and unknown names as
 * attributes), then `children` appended. Shared by the dashboard's views. */
export function element(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node) node[key] = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

/** A rate and, when the row has a plan in that direction, a bar of its use of it. */
function rateCell(cell, rate, percent, limited) {
  cell.querySelector(".rate").textContent = formatBps(rate);
  const meter = cell.querySelector(".meter");
  const use = cell.querySelector(".use");
  if (!limited) {
    meter.hidden = true;
    use.textContent = "unlimited";
    use.classList.add("muted");
    return;
  }
  meter.hidden = false;
  meter.style.setProperty("--fill", String(barFill(percent)));
  meter.dataset.level = percent !== null && percent >= HIGH_USE ? "high" : "normal";
  use.textContent = formatPercent(percent);
  use.classList.remove("muted");
}

function rateTemplate() {
  return element(
    "td",
    { class: "num rate-cell" },
    element("span", { class: "rate" }),
    element("span", { class: "use" }),
    element("span", { class: "meter", "aria-hidden": "true" }, element("span", { class: "fill" })),
  );
}

/**
 * The columns of each table: `title`, `sort` (a key of table.js's SORT_KEYS, or none),
 * `align` ("num" for figures), `make()` (a new cell) and `fill(cell, row)`; the `name` column
 * is drawn by the table itself.
 */
const COLUMNS = {
  queues: [
    { title: "Queue", sort: "name", name: true },
    {
      title: "Upload",
      sort: "up",
      align: "num",
      make: rateTemplate,
      fill: (cell, row) =>
        rateCell(cell, ratesOf(row, "queues")[0], utilisationOf(row)[0], planOf(row)[0] !== null),
    },
    {
      title: "Download",
      sort: "down",
      align: "num",
      make: rateTemplate,
      fill: (cell, row) =>
        rateCell(cell, ratesOf(row, "queues")[1], utilisationOf(row)[1], planOf(row)[1] !== null),
    },
    {
      title: "Use",
      sort: "util",
      align: "num",
      make: () => element("td", { class: "num util" }),
      fill: (cell, row) => {
        cell.textContent = formatPercent(peakUtilisation(row));
      },
    },
    {
      title: "Plan",
      align: "num",
      make: () => element("td", { class: "num plan" }),
      fill: (cell, row) => {
        cell.textContent = formatPlan(...planOf(row));
      },
    },
  ],
  hotspot: [
    { title: "User", sort: "name", name: true },
    {
      title: "Address",
      align: "",
      make: () => element("td", { class: "mono" }),
      fill: (cell, row) => {
        cell.textContent = formatText(row.address);
      },
    },
    {
      title: "MAC",
      align: "",
      make: () => element("td", { class: "mono" }),
      fill: (cell, row) => {
        cell.textContent = formatText(row.mac);
      },
    },
    {
      title: "Uptime",
      sort: "uptime",
      align: "num",
      make: () => element("td", { class: "num" }),
      fill: (cell, row) => {
        cell.textContent = typeof row.uptime === "number" ? formatDuration(row.uptime) : "–";
      },
    },
    {
      title: "Upload",
      sort: "up",
      align: "num",
      make: () => element("td", { class: "num" }),
      fill: (cell, row) => {
        cell.textContent = formatBps(ratesOf(row, "hotspot")[0]);
      },
    },
    {
      title: "Download",
      sort: "down",
      align: "num",
      make: () => element("td", { class: "num" }),
      fill: (cell, row) => {
        cell.textContent = formatBps(ratesOf(row, "hotspot")[1]);
      },
    },
  ],
};

const TITLES = {
  queues: {
    heading: "Queues",
    caption: "Simple queues: each customer's rates against its plan; choose a name to chart it",
    search: "Find queue",
    placeholder: "name, comment, address or login",
  },
  hotspot: {
    heading: "Hotspot users",
    caption: "Hotspot users logged in, with their rates; choose a name to chart it",
    search: "Find user",
    placeholder: "login, comment, address or MAC",
  },
};

/**
 * The table of one view. `actions`: toggle(name, on) (chart a row or stop charting it).
 * `update({source, feed, charted})` redraws it from the topic's latest frame.
 */
export class RowsTable {
  constructor(root, actions) {
    this.root = root;
    this.actions = actions;
    const $ = (selector) => root.querySelector(selector);
    this.title = $(".rows-title");
    this.searchLabel = $(".rows-search-label");
    this.search = $(".rows-search input");
    this.note = $(".rows-note");
    this.caption = $(".rows-table caption");
    this.headRow = $(".rows-table thead tr");
    this.body = $(".rows-table tbody");
    this.scroll = $(".rows-scroll");
    this.source = null;
    this.sort = null;
    this.trs = new Map(); // row id -> its <tr>, reused across frames
    this.frozen = false; // the order holds still while the pointer is over the table
    this.drawn = { frame: null, key: "" };
    this.state = null;

    this.search.addEventListener("input", () => this._draw(true));
    this.headRow.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-sort]");
      if (!button) return;
      this.sort = nextSort(this.sort, button.dataset.sort);
      this._head();
      this._draw(true);
    });
    this.body.addEventListener("click", (event) => {
      // The whole row charts it (the name is the button a keyboard reaches).
      const row = event.target.closest("tr[data-name]");
      if (!row || row.querySelector("button").disabled) return;
      const on = row.querySelector("button").getAttribute("aria-pressed") !== "true";
      actions.toggle(row.dataset.name, on);
    });
    const freeze = (frozen) => () => {
      this.frozen = frozen;
    };
    this.scroll.addEventListener("pointerenter", freeze(true));
    this.scroll.addEventListener("pointerleave", freeze(false));
  }

  update(state) {
    this.state = state;
    if (state.source !== this.source) this._switch(state.source);
    this._draw(false);
  }

  _switch(source) {
    this.source = source;
    this.sort = { ...(DEFAULT_SORT[source] ?? DEFAULT_SORT.queues) };
    const titles = TITLES[source] ?? TITLES.queues;
    this.title.textContent = titles.heading;
    this.caption.textContent = titles.caption;
    this.searchLabel.textContent = titles.search;
    this.search.placeholder = titles.placeholder;
    this.search.value = "";
    this.trs = new Map();
    this.body.replaceChildren();
    this.drawn = { frame: null, key: "" };
    this._head();
  }

  _columns() {
    return COLUMNS[this.source] ?? COLUMNS.queues;
  }

  _head() {
    const cells = this._columns().map((column) => {
      const th = element("th", { scope: "col", class: column.name ? "name" : column.align });
      if (column.sort === undefined) {
        th.textContent = column.title;
        return th;
      }
      const active = this.sort?.key === column.sort;
      if (active) th.setAttribute("aria-sort", this.sort.descending ? "descending" : "ascending");
      const arrow = active ? (this.sort.descending ? " ▾" : " ▴") : "";
      th.append(
        element(
          "button",
          {
            type: "button",
            class: "sort",
            dataset: { sort: column.sort },
            title: `Sort by ${column.title.toLowerCase()}`,
          },
          `${column.title}${arrow}`,
        ),
      );
      return th;
    });
    this.headRow.replaceChildren(element("th", { scope: "col", class: "num" }, "#"), ...cells);
  }

  _draw(force) {
    const state = this.state;
    if (state === null) return;
    const { feed, charted } = state;
    const frame = feed.latest;
    const query = this.search.value;
    const selected = new Set(charted);
    const key = `${query}\n${this.sort?.key}/${this.sort?.descending}\n${[...selected].join("\n")}`;
    if (!force && frame === this.drawn.frame && key === this.drawn.key) return;
    this.drawn = { frame, key };
    const rows = feed.rows();
    const model = tableRows(rows, { source: this.source, query, sort: this.sort });
    const columns = this._columns();
    const full = selected.size >= MAX_CHARTED;
    const seen = new Set();
    model.rows.forEach((row, rank) => {
      const id = `${row.id}\n${row.name}`;
      seen.add(id);
      let tr = this.trs.get(id);
      if (tr === undefined) {
        tr = this._row(row, columns);
        this.trs.set(id, tr);
      }
      // While the order holds still under the pointer, so do the ranks; a sort or a search
      // asked for by the viewer reorders at once, pointer or not.
      if (force || !this.frozen) tr.cells[0].textContent = String(rank + 1);
      const on = selected.has(row.name);
      const button = tr.querySelector("button.link");
      button.setAttribute("aria-pressed", String(on));
      button.disabled = !on && full;
      tr.querySelector(".comment").textContent = commentOf(row);
      const notes = [];
      if (row.disabled) notes.push("disabled");
      if (row.dynamic) notes.push("dynamic");
      tr.querySelector(".note").textContent = notes.join(", ");
      tr.classList.toggle("down", row.disabled === true);
      tr.title = details(row, frame?.ts ?? null);
      columns.forEach((column, i) => {
        if (!column.name) column.fill(tr.cells[1 + i], row);
      });
    });
    for (const [id, tr] of this.trs) {
      if (!seen.has(id)) {
        tr.remove();
        this.trs.delete(id);
      }
    }
    const order = model.rows.map((row) => this.trs.get(`${row.id}\n${row.name}`));
    if (force || !this.frozen || this.body.children.length !== order.length) {
      this.body.append(...order);
    }

    const info = SOURCE_INFO[this.source] ?? SOURCE_INFO.queues;
    const notes = [];
    if (frame === null) notes.push(`Waiting for the router's ${info.plural}…`);
    else if (model.total === 0) notes.push(`The router shows no ${info.plural}.`);
    else if (model.matched === 0) notes.push(`No ${info.noun} matches “${query}”.`);
    else if (model.matched > model.rows.length) {
      notes.push(`Showing ${model.rows.length} of ${model.matched}; type to narrow the list.`);
    } else notes.push(`${model.matched} of ${model.total} ${info.plural}.`);
    if (full) notes.push(`At most ${MAX_CHARTED} per chart.`);
    this.note.textContent = notes.join(" ");
  }

  _row(row, columns) {
    const button = element(
      "button",
      { type: "button", class: "link", dataset: { name: row.name }, title: `Chart ${row.name}` },
      row.name,
    );
    const name = element(
      "th",
      { scope: "row", class: "name" },
      button,
      element("span", { class: "comment" }),
      element("span", { class: "note muted" }),
    );
    const cells = columns.filter((column) => !column.name).map((column) => column.make());
    return element(
      "tr",
      { dataset: { name: row.name } },
      element("td", { class: "num rank" }),
      name,
      ...cells,
    );
  }
}

/**
 * A row's other fields, for its tooltip: a queue's target and parent, a PPP session (its uptime
 * at `ts`, the frame's poll time).
 */
function details(row, ts) {
  const parts = [];
  if (row.target) parts.push(`target ${row.target}`);
  if (row.parent) parts.push(`parent ${row.parent}`);
  const session = row.session;
  if (session && typeof session === "object") {
    if (session.user) parts.push(`login ${session.user}`);
    if (session.caller_id) parts.push(`caller id ${session.caller_id}`);
    if (session.address) parts.push(`address ${session.address}`);
    const uptime = sessionUptime(session, ts);
    if (uptime !== null) parts.push(`up ${formatDuration(uptime)}`);
  }
  if (row.server) parts.push(`server ${row.server}`);
  return parts.join(" · ");
}
