/**
 * Rendering of the customer view (`/customer`): who, the plan, the rates now, the session,
 * and the chart. No networking and no protocol: customer-main.js hands it the summary
 * (customer.js) and the charted topic's series, and it calls back with what the viewer chose.
 */

import { TrafficChart } from "./chart.js";
import { formatBps, formatDuration, formatPercent, formatPlan, formatText } from "./format.js";
import { SOURCE_INFO } from "./sources.js";

/** The words for a row in the row chooser. */
const ROW_WORDS = { queues: "queue", interfaces: "interface", hotspot: "hotspot user" };

/** A rate now, with its share of the plan when there is one. */
function rateText(rate, percent) {
  if (percent === null || percent === undefined) return formatBps(rate);
  return `${formatBps(rate)} (${formatPercent(percent)} of plan)`;
}

/** `actions`: setWindow(minutes), choose({source, name}). */
export class CustomerView {
  constructor(root, actions) {
    const $ = (selector) => root.querySelector(selector);
    this.root = root;
    this.title = $(".customer-title");
    this.comment = $(".customer-comment");
    this.note = $(".customer-note");
    this.facts = {
      down: $(".fact-down"),
      up: $(".fact-up"),
      plan: $(".fact-plan"),
      uptime: $(".fact-uptime"),
      address: $(".fact-address"),
      caller: $(".fact-caller"),
      login: $(".fact-login"),
    };
    this.windowButtons = [...root.querySelectorAll("[data-window]")];
    this.rowChooser = $(".customer-rows");
    this.chartBox = $(".chart");
    this.readout = $(".readout");
    this.rowsKey = "";
    this.range = [0, 1];
    this.chart = new TrafficChart(this.chartBox, {
      range: () => this.range,
      onCursor: (text) => {
        this.readout.textContent = text;
      },
      height: () => (window.matchMedia("(max-width: 700px)").matches ? 220 : 320),
    });
    for (const button of this.windowButtons) {
      button.addEventListener("click", () => actions.setWindow(Number(button.dataset.window)));
    }
    this.rowChooser.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-source]");
      if (button) actions.choose({ source: button.dataset.source, name: button.dataset.name });
    });
  }

  restyle() {
    this.chart.restyle();
  }

  /**
   * state: `{summary, rows, note, window, series, range, live}`: `summary` from customer.js,
   * `rows` every row shown (`[{source, name}]`), `note` a sentence for the viewer (or ""),
   * `series` the charted topic's Series (or null), `range` the chart's `[from, to]`, `live`
   * whether the figures are current (they dim otherwise).
   */
  update({ summary, rows, note, window: minutes, series, range, live }) {
    this.root.dataset.state = live ? "live" : "other";
    this.note.hidden = !note;
    this.note.textContent = note;
    this.title.textContent = summary.title || "Your connection";
    this.comment.textContent = summary.comment;
    document.title = `${summary.title || "Your connection"} · live traffic`;

    const [up, down] = summary.rates;
    const [useUp, useDown] = summary.use;
    const f = this.facts;
    f.down.textContent = summary.chart ? rateText(down, useDown) : "–";
    f.up.textContent = summary.chart ? rateText(up, useUp) : "–";
    f.plan.textContent = summary.plan === null ? "–" : formatPlan(...summary.plan);
    const session = summary.session;
    f.uptime.textContent =
      typeof session?.uptime === "number" ? formatDuration(session.uptime) : "–";
    f.address.textContent = formatText(session?.address);
    f.caller.textContent = formatText(session?.caller_id);
    const service = session?.service ? ` (${session.service})` : "";
    f.login.textContent = session?.user ? `${session.user}${service}` : "–";
    // What is not known is left out (a static queue has no login, no caller id, no uptime).
    for (const fact of [f.plan, f.uptime, f.address, f.caller, f.login]) {
      fact.parentElement.hidden = fact.textContent === "–";
    }

    for (const button of this.windowButtons) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.window) === minutes));
    }
    this._renderChooser(rows, summary.chart);
    this._renderChart(summary, series, range, minutes);
  }

  _renderChooser(rows, chart) {
    const listed = rows.map((r) => `${r.source}/${r.name}`).join("\n");
    const key = `${listed}\n${chart?.source}/${chart?.name}`;
    if (key === this.rowsKey) return;
    this.rowsKey = key;
    // A choice only when there is one: a customer with a queue and an interface, say.
    if (rows.length < 2) {
      this.rowChooser.replaceChildren();
      return;
    }
    this.rowChooser.replaceChildren(
      ...rows.map((row) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "chip";
        button.dataset.source = row.source;
        button.dataset.name = row.name;
        button.setAttribute(
          "aria-pressed",
          String(chart?.source === row.source && chart?.name === row.name),
        );
        button.textContent = `${ROW_WORDS[row.source]} ${row.name}`;
        return button;
      }),
    );
  }

  _renderChart(summary, series, range, minutes) {
    this.range = range;
    const chart = summary.chart;
    const names = chart === null || series === null ? [] : [chart.name];
    const plan = chart?.source === "queues";
    // The customer's words: an interface's rx is what the customer sent (up), its tx down.
    const dirs = SOURCE_INFO.queues.dirs;
    this.chart.draw({
      names,
      dirs,
      plan,
      columns: series === null ? [[]] : series.columns(names, range[0], { plan }),
    });
    this.chartBox.setAttribute(
      "aria-label",
      names.length
        ? `Traffic chart, last ${minutes} min: upload and download${plan ? " with the plan" : ""}`
        : "Traffic chart: nothing to show yet",
    );
    if (!this.chart.pointing) {
      const lines = `Upload solid, download dashed${plan ? ", plan dotted" : ""}.`;
      const hint = `${lines} Point at the chart for exact values.`;
      this.readout.textContent = names.length ? hint : "";
    }
  }
}
