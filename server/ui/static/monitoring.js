// The monitoring view: one model's report (GET /models/{name}/monitoring, the last 24 hours),
// per version: captured, dropped and labelled rows, drift per feature as bars (PSI, drifted
// ones marked), and live accuracy per hour beside the validation accuracy. Asked again
// every REFRESH_MS while a model is chosen: live like the rest of the page.

import { request } from "./api.js";
import { element } from "./charts.js";

const SVG = "http://www.w3.org/2000/svg";
const REFRESH_MS = 5000;
const DRIFT_PSI = 0.2; // the report's threshold, drawn as the bars' scale mark

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

const fixed = (value) => (value === null || value === undefined ? "–" : value.toFixed(3));

function driftBars(drift) {
  const holder = element("div", undefined, { class: "bars", role: "list" });
  holder.setAttribute("aria-label", "drift per feature");
  holder.append(element("p", `Drift per feature (PSI; drifted at ${DRIFT_PSI})`, { class: "bars-title" }));
  if (drift.reason) holder.append(element("p", drift.reason, { class: "reason" }));
  const top = Math.max(DRIFT_PSI * 2, ...drift.features.map((f) => f.psi));
  for (const feature of drift.features) {
    const kind = feature.drifted ? "drifted" : "steady";
    const line = element("div", undefined, { class: `bar ${kind}`, role: "listitem", "data-feature": feature.name });
    const fill = element("span", undefined, { class: "fill" });
    fill.style.setProperty("--share", String(Math.min(1, feature.psi / top)));
    const note = feature.drifted === null ? " (too few rows)" : feature.drifted ? " drifted" : "";
    line.append(element("span", feature.name, { class: "label" }), fill, element("span", `${feature.psi.toFixed(3)}${note}`, { class: "value" }));
    holder.append(line);
  }
  return holder;
}

// Live accuracy per hour as a line, the validation accuracy as a dashed reference.
function accuracyChart(points, validation) {
  const width = 360;
  const height = 110;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", class: "live-chart" });
  chart.setAttribute("aria-label", "live accuracy per hour, and the validation accuracy");
  const y = (value) => height - 6 - value * (height - 12);
  if (validation !== null && validation !== undefined) {
    chart.append(svg("line", { x1: 0, x2: width, y1: y(validation), y2: y(validation), class: "validation" }));
  }
  const step = width / Math.max(1, points.length - 1);
  const line = points.map((point, i) => `${points.length === 1 ? width / 2 : i * step},${y(point.accuracy)}`);
  chart.append(svg("polyline", { points: line.join(" "), class: "live" }));
  for (const [i, point] of points.entries()) {
    const dot = svg("circle", { cx: points.length === 1 ? width / 2 : i * step, cy: y(point.accuracy), r: 3, class: "live" });
    const title = svg("title");
    title.textContent = `${point.hour}: ${point.accuracy.toFixed(3)} on ${point.labelled} labelled rows`;
    dot.append(title);
    chart.append(dot);
  }
  return chart;
}

function versionFigure(name, report) {
  const figure = element("figure", undefined, { "data-monitoring": `${name}/${report.version}` });
  const live = report.live?.accuracy;
  const validation = report.validation?.accuracy;
  figure.append(
    element("figcaption", `${name} v${report.version}`),
    element("p", `${report.captured} captured · ${report.dropped} dropped · ${report.labelled} labelled`, { class: "counts" }),
    element("p", `live accuracy ${fixed(live)} · validation ${fixed(validation)}`, { class: "accuracy" }),
    driftBars(report.drift),
  );
  if (report.live_by_hour.length) figure.append(accuracyChart(report.live_by_hour, validation));
  return figure;
}

let chosen = "";
let timer = null;

async function refresh() {
  clearTimeout(timer);
  const holder = document.getElementById("monitoring-result");
  if (!chosen) return holder.replaceChildren();
  try {
    const report = await request("GET", `/models/${encodeURIComponent(chosen)}/monitoring`);
    if (report.name !== chosen) return;
    const state = report.capture ? `capture on (sample rate ${report.sample_rate})` : "capture off";
    const figures = report.versions.map((version) => versionFigure(report.name, version));
    holder.replaceChildren(element("p", state, { class: "capture-state" }), ...figures);
    if (!figures.length) holder.append(element("p", "nothing captured in the last 24 hours"));
  } catch (error) {
    holder.replaceChildren(element("p", `monitoring: ${error.message}`));
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

// The models to choose from, kept as the snapshot lists them.
export function renderMonitoringChoices(models) {
  const select = document.getElementById("monitoring-model");
  const names = models.map((model) => model.name);
  const options = [element("option", "choose a model", { value: "" }), ...names.map((name) => element("option", name, { value: name }))];
  select.replaceChildren(...options);
  select.value = names.includes(chosen) ? chosen : "";
  if (!names.includes(chosen) && chosen) {
    chosen = "";
    refresh();
  }
}

export function watchMonitoring() {
  document.getElementById("monitoring-model").addEventListener("change", (event) => {
    chosen = event.target.value;
    refresh();
  });
}
