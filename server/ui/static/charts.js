// The dashboard's pictures, drawn as SVG and HTML by hand: progress bars, ROC curves, a
// confusion matrix and the traffic chart. Styles go through the CSSOM (the page's
// Content-Security-Policy allows no style attribute in markup).

const SVG = "http://www.w3.org/2000/svg";

export function element(tag, text = undefined, attributes = {}) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  return node;
}

function svg(tag, attributes = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  return node;
}

// A job's bar: its fraction done, or indeterminate while its library reports none.
export function progressBar(job) {
  const fraction = job.state === "succeeded" ? 1 : job.progress?.fraction;
  const wrap = element("span", undefined, { class: "progress" });
  const bar = element("progress", undefined, { max: "1" });
  if (fraction === null || fraction === undefined) {
    bar.setAttribute("aria-label", `${job.name}: ${job.phase ?? job.state}`);
    wrap.append(bar, element("span", ` ${job.phase ?? ""}`));
    return wrap;
  }
  const percent = Math.round(fraction * 100);
  bar.value = fraction;
  bar.textContent = `${percent}%`;
  bar.setAttribute("aria-label", `${job.name}: ${percent}%`);
  wrap.append(bar, element("span", ` ${percent}%`, { class: "percent" }));
  return wrap;
}

function plot(width, height, label) {
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
  chart.setAttribute("aria-label", label);
  return chart;
}

const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

export function rocChart(curves, classes) {
  const size = 220;
  const pad = 28;
  const span = size - 2 * pad;
  const chart = plot(size, size, "ROC curve on the held-out rows");
  chart.append(svg("rect", { x: pad, y: pad, width: span, height: span, class: "frame" }));
  chart.append(svg("line", { x1: pad, y1: pad + span, x2: pad + span, y2: pad, class: "chance" }));
  curves.forEach((curve, index) => {
    const points = curve.fpr.map((x, i) => `${pad + x * span},${pad + (1 - curve.tpr[i]) * span}`);
    const line = svg("polyline", { points: points.join(" "), class: "curve" });
    line.style.stroke = COLOURS[index % COLOURS.length];
    const title = svg("title");
    title.textContent = `class ${classes[curve.class_index]} against the rest`;
    line.append(title);
    chart.append(line);
  });
  const xLabel = svg("text", { x: pad + span / 2, y: size - 6, class: "axis" });
  xLabel.textContent = "false positive rate";
  const yLabel = svg("text", { x: 10, y: pad + span / 2, class: "axis vertical" });
  yLabel.textContent = "true positive rate";
  chart.append(xLabel, yLabel);
  return chart;
}

export function confusionTable(matrix, classes) {
  const table = element("table", undefined, { class: "confusion" });
  table.append(element("caption", "Held-out rows: true class (rows) by predicted (columns)"));
  const head = element("tr");
  head.append(element("th", ""));
  classes.forEach((label) => head.append(element("th", String(label), { scope: "col" })));
  table.append(head);
  const most = Math.max(1, ...matrix.flat());
  matrix.forEach((row, i) => {
    const line = element("tr");
    line.append(element("th", String(classes[i]), { scope: "row" }));
    row.forEach((count) => {
      const cell = element("td", String(count));
      cell.style.setProperty("--share", String(count / most));
      line.append(cell);
    });
    table.append(line);
  });
  return table;
}

// Requests per second and /predict's p99 over the last minute, each on its own scale.
export function trafficChart(points) {
  const width = 360;
  const height = 110;
  const chart = plot(width, height, "requests per second and predict p99, last minute");
  const step = width / Math.max(1, 59);
  for (const [key, kind] of [["requests_per_second", "rate"], ["predict_p99_ms", "p99"]]) {
    const values = points.map((point) => point[key] ?? 0);
    const top = Math.max(1e-9, ...values);
    const line = values.map((v, i) => `${i * step},${height - 6 - (v / top) * (height - 12)}`);
    chart.append(svg("polyline", { points: line.join(" "), class: `traffic ${kind}` }));
  }
  return chart;
}
