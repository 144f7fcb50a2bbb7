// Explanations as bars, in HTML (widths through the CSSOM: the page's Content-Security-Policy
// allows no style attribute in markup): a version's feature importance, and one row's
// contributions from the base value to the model's output.

import { element } from "./charts.js";

const SHOWN = 12; // the features with the largest values; the rest are summed in one line

function bar(label, value, share, kind) {
  const line = element("div", undefined, { class: `bar ${kind}` });
  const fill = element("span", undefined, { class: "fill" });
  fill.style.setProperty("--share", String(Math.min(1, Math.abs(share))));
  line.append(element("span", label, { class: "label" }), fill, element("span", value, { class: "value" }));
  return line;
}

const number = (value) => (Math.abs(value) >= 0.01 || value === 0 ? value.toFixed(3) : value.toExponential(2));

// Mean |contribution| per feature on the held-out rows, largest first (as the fit keeps it).
export function importanceBars(importance) {
  const entries = Object.entries(importance);
  const top = Math.max(1e-12, ...entries.map(([, value]) => value));
  const holder = element("div", undefined, { class: "bars", role: "list" });
  holder.setAttribute("aria-label", "feature importance on the held-out rows");
  holder.append(element("p", "Feature importance (mean |contribution|)", { class: "bars-title" }));
  for (const [name, value] of entries.slice(0, SHOWN)) {
    holder.append(bar(name, number(value), value / top, "importance"));
  }
  if (entries.length > SHOWN) holder.append(element("p", `… and ${entries.length - SHOWN} more`));
  return holder;
}

// One row, one output: the base value, each feature's push up or down (largest first), and
// the output they add up to, in the space the answer names.
export function contributionBars(answer, row, output) {
  const values = answer.contributions[row][output];
  const base = answer.base_values[output];
  const total = base + values.reduce((sum, value) => sum + value, 0);
  const order = values.map((value, index) => index).sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]));
  const top = Math.max(1e-12, ...values.map(Math.abs));
  const explained = answer.classes.length === 2 ? answer.classes[1] : answer.classes[output];
  const holder = element("div", undefined, { class: "bars", role: "list" });
  holder.setAttribute("aria-label", `contributions to ${explained}`);
  holder.append(
    element("p", `Row ${row + 1}: predicted ${answer.predictions[row]}; ${answer.output} of ${explained}`, { class: "bars-title" }),
    bar("base value", number(base), 0, "base"),
  );
  for (const index of order.slice(0, SHOWN)) {
    const value = values[index];
    holder.append(bar(answer.feature_names[index], `${value >= 0 ? "+" : ""}${number(value)}`, value / top, value >= 0 ? "up" : "down"));
  }
  const rest = order.slice(SHOWN).reduce((sum, index) => sum + values[index], 0);
  if (order.length > SHOWN) holder.append(bar(`${order.length - SHOWN} more`, number(rest), rest / top, rest >= 0 ? "up" : "down"));
  holder.append(bar("output", number(total), 0, "total"));
  return holder;
}
