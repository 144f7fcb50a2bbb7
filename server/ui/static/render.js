// Snapshots of /ui/events to the page's tables. Every value goes in as text (textContent),
// never as markup: a model name can't inject anything.

import { importanceBars } from "./bars.js";
import { confusionTable, element, progressBar, rocChart, trafficChart } from "./charts.js";

function replaceRows(table, rows) {
  table.tBodies[0].replaceChildren(...rows);
}

function button(label, action, detail) {
  const node = element("button", label, { type: "button", class: "management" });
  node.dataset.action = action;
  node.setAttribute("aria-label", `${label} ${detail}`);
  return node;
}

function seconds(value) {
  return value === null || value === undefined ? "" : `${Number(value).toFixed(1)} s`;
}

export function renderSlots(training) {
  const busy = training.active;
  document.getElementById("slots").textContent =
    `${busy} of ${training.slots} busy, ${training.slots - busy} free · backend: ${training.backend}`;
  const cells = [];
  for (let i = 0; i < training.slots; i++) {
    const job = training.jobs[i];
    const cell = element("span", job ? job.name : "free", { class: job ? "slot busy" : "slot" });
    cells.push(cell);
  }
  document.getElementById("slot-cells").replaceChildren(...cells);
}

export function renderJobs(jobs) {
  replaceRows(
    document.getElementById("jobs"),
    jobs.map((job) => {
      const row = element("tr", undefined, { "data-job": job.id, "data-state": job.state });
      const time = job.state === "running" ? `ETA ${seconds(job.eta_seconds) || "…"}` : seconds(job.elapsed_seconds);
      row.append(
        element("td", job.name),
        element("td", job.model_type),
        element("td", job.error ? `${job.state}: ${job.error.detail}` : job.state),
      );
      const warned = job.model?.warnings ?? [];
      if (warned.length) {  // the library's own words, e.g. a model that did not converge
        const note = element("small", ` (${warned.length} warning${warned.length > 1 ? "s" : ""})`);
        note.title = warned.join("\n");
        note.className = "warning";
        row.lastChild.append(note);
      }
      const progress = element("td");
      progress.append(progressBar(job));
      row.append(progress, element("td", time));
      const actions = element("td");
      if (job.state === "running") {
        const cancel = button("Cancel", "cancel", job.name);
        cancel.dataset.job = job.id;
        actions.append(cancel);
      }
      row.append(actions);
      return row;
    }),
  );
}

function versionActions(model, version) {
  const cell = element("td");
  const named = `${model.name} version ${version.version}`;
  const add = (label, action) => {
    const node = button(label, action, named);
    node.dataset.name = model.name;
    node.dataset.version = String(version.version);
    cell.append(node);
  };
  if (version.status === "loaded") add("Unload", "unload");
  else if (version.status === "trained") add("Load", "load");
  if (version.version !== model.current_version && version.status !== "untrusted") add("Promote", "promote");
  if (version.version === model.current_version) {
    if (model.versions.length > 1) add("Roll back", "rollback");
    add("Remove", "remove");
  }
  return cell;
}

function score(version, key) {
  const value = version.scores?.[key];
  return value === null || value === undefined ? "" : value.toFixed(3);
}

export function renderModels(models, inference) {
  document.getElementById("loaded-count").textContent =
    `(${inference.loaded_versions.length} of ${inference.max_models} loaded)`;
  const rows = [];
  for (const model of models) {
    const versions = model.versions.length ? model.versions : [{ version: model.training_version, status: model.status }];
    for (const version of versions) {
      const current = version.version === model.current_version;
      const row = element("tr", undefined, { "data-model": model.name, "data-version": String(version.version) });
      if (current) row.classList.add("current");
      const aliases = Object.entries(model.aliases ?? {}).filter(([, v]) => v === version.version).map(([a]) => a);
      row.append(
        element("td", model.name),
        element("td", `${version.version ?? ""}${current ? " (current)" : ""}`),
        element("td", aliases.join(", ")),
        element("td", version.model_type ?? ""),
        element("td", version.error ? `${version.status}: ${version.error}` : version.status ?? ""),
        element("td", version.runtime ?? ""),
        element("td", score(version, "accuracy")),
        element("td", score(version, "roc_auc")),
        versionActions(model, version),
      );
      rows.push(row);
    }
  }
  replaceRows(document.getElementById("models"), rows);
}

// The pictures of every current version with a validation, and its categorical columns with
// their levels, fetched once per version.
const drawn = new Map();
export async function renderPictures(models, fetchVersion) {
  const holder = document.getElementById("pictures");
  const wanted = new Set();
  for (const model of models) {
    const version = model.versions.find((v) => v.version === model.current_version);
    if (!version?.pictures && !version?.categorical?.length) continue;
    const key = `${model.name}/${version.version}/${version.created_at}`;
    wanted.add(key);
    if (drawn.has(key)) continue;
    const figure = element("figure", undefined, { "data-pictures": model.name });
    drawn.set(key, figure);
    let info;
    try {
      info = await fetchVersion(model.name, version.version);
    } catch {
      drawn.delete(key); // try again with the next snapshot
      continue;
    }
    const validation = info.validation;
    if (version.pictures) {
      figure.append(
        element("figcaption", `${model.name} v${version.version}: held-out rows (${validation.n_samples})`),
        rocChart(validation.roc_curve, info.classes),
        confusionTable(validation.confusion_matrix, info.classes),
      );
      if (validation.feature_importance) figure.append(importanceBars(validation.feature_importance));
    } else {
      figure.append(element("figcaption", `${model.name} v${version.version}`));
    }
    const categorical = (info.features ?? []).filter((feature) => feature.kind === "categorical");
    if (categorical.length) figure.append(levelsList(categorical));
  }
  for (const [key, figure] of drawn) {
    if (!wanted.has(key)) {
      drawn.delete(key);
      figure.remove();
    }
  }
  holder.replaceChildren(...[...drawn.keys()].sort().map((key) => drawn.get(key)));
}

// A version's categorical columns: each with its levels (the first few) and their count.
const LEVELS_SHOWN = 8;
function levelsList(categorical) {
  const list = element("dl", undefined, { class: "levels" });
  for (const feature of categorical) {
    const levels = feature.levels ?? [];
    const shown = levels.slice(0, LEVELS_SHOWN).join(", ");
    const more = levels.length > LEVELS_SHOWN ? `, … (${levels.length} levels)` : "";
    list.append(element("dt", `${feature.name} (categorical)`), element("dd", `${shown}${more}`));
  }
  return list;
}

export function renderTraffic(points) {
  const last = points[points.length - 1];
  document.getElementById("traffic-now").textContent = last
    ? `${last.requests_per_second} requests/s · predict p99 ≤ ${last.predict_p99_ms ?? "–"} ms (last second)`
    : "measuring…";
  document.getElementById("traffic-chart").replaceChildren(trafficChart(points));
}

// The loaded versions, to predict a file with or explain a row by.
export function renderPredictChoices(inference) {
  const select = document.getElementById("predict-model");
  const chosen = select.value;
  const options = inference.loaded_versions.map(({ name, version }) => {
    const value = JSON.stringify({ name, version });
    return element("option", `${name} (version ${version})`, { value });
  });
  select.replaceChildren(...options);
  if (options.some((option) => option.value === chosen)) select.value = chosen;
}
