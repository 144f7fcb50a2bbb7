// The dashboard: ask for a token when the server has tokens, keep the page live from one
// event stream, and act through the service's own API. With the inference token the
// management actions are hidden (and the server would refuse them anyway).

import { ApiError, request, stream, token } from "./api.js";
import { contributionBars } from "./bars.js";
import { renderMonitoringChoices, watchMonitoring } from "./monitoring.js";
import {
  renderJobs,
  renderModels,
  renderPictures,
  renderPredictChoices,
  renderSlots,
  renderTraffic,
} from "./render.js";

const $ = (id) => document.getElementById(id);
const tokensRequired = document.body.dataset.tokensRequired === "true";
function say(text) {
  $("message").textContent = text;
}

function askForToken(reason) {
  token.clear();
  $("board").hidden = true;
  $("token-panel").hidden = false;
  $("forget-token").hidden = true;
  $("connection").textContent = reason;
  $("token").focus();
}

function show(snapshot) {
  document.body.dataset.role = snapshot.role;
  $("board").hidden = false;
  $("token-panel").hidden = true;
  $("forget-token").hidden = !tokensRequired;
  $("connection").textContent = `live · ${snapshot.role === "inference" ? "inference token: read and predict only" : "all actions"}`;
  renderSlots(snapshot.training);
  renderJobs(snapshot.jobs);
  renderModels(snapshot.models, snapshot.inference);
  renderTraffic(snapshot.traffic);
  renderPredictChoices(snapshot.inference);
  renderPictures(snapshot.models, fetchVersion);
  renderMonitoringChoices(snapshot.models);
}

const versions = new Map(); // what a version says of itself does not change: asked once
function fetchVersion(name, version) {
  const key = `${name}/${version}`;
  if (!versions.has(key)) {
    const asked = request("GET", `/models/${encodeURIComponent(name)}/versions/${version}`);
    asked.catch(() => versions.delete(key));
    versions.set(key, asked);
  }
  return versions.get(key);
}

// A typed value as the model's column takes it: text for a categorical column (a zip code
// keeps its zero), a number for a numeric one, null for a blank.
function typed(text, feature) {
  if (text === "") return null;
  if (feature?.kind === "categorical") return text;
  const number = Number(text);
  return Number.isNaN(number) ? text : number;
}

async function connect() {
  if (tokensRequired && !token.get()) {
    askForToken("this server needs a token");
    return;
  }
  for (let wait = 1000; ; wait = Math.min(wait * 2, 10000)) {
    try {
      await stream(show);
      wait = 1000;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        askForToken(`the server refused the token (${error.status}): ${error.message}`);
        return;
      }
      $("connection").textContent = `disconnected (${error.message}); retrying`;
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
}

async function act(label, work) {
  say(`${label}…`);
  try {
    const answer = await work();
    say(`${label}: done`);
    return answer;
  } catch (error) {
    say(`${label}: ${error.message}`);
    return undefined;
  }
}

function confirmRemoval(name) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-text").textContent = `Remove '${name}' with all its versions? This deletes its files.`;
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
  });
}

async function onAction(event) {
  const target = event.target.closest("button[data-action]");
  if (!target) return;
  const { action, name, job } = target.dataset;
  const version = Number(target.dataset.version);
  const config = { config: { name, version } };
  const path = `/models/${encodeURIComponent(name ?? "")}`;
  switch (action) {
    case "cancel":
      return act(`cancel ${job}`, () => request("POST", `/jobs/${job}/cancel`));
    case "load":
      return act(`load ${name} v${version}`, () => request("POST", "/load", config));
    case "unload":
      return act(`unload ${name} v${version}`, () => request("POST", "/unload", config));
    case "promote":
      return act(`promote ${name} v${version}`, () => request("POST", `${path}/promote`, { version }));
    case "rollback":
      return act(`roll back ${name}`, () => request("POST", `${path}/rollback`));
    case "remove":
      if (await confirmRemoval(name)) {
        return act(`remove ${name}`, () => request("POST", "/remove", { config: { name } }));
      }
      return say(`${name} kept`);
  }
}

async function onFit(event) {
  event.preventDefault();
  let hyperparameters;
  try {
    hyperparameters = JSON.parse($("fit-hyperparameters").value || "{}");
  } catch (error) {
    return say(`hyperparameters: not JSON (${error.message})`);
  }
  const config = { name: $("fit-name").value, model_type: $("fit-type").value, hyperparameters };
  const fraction = Number($("fit-validation").value);
  if (fraction > 0) config.validation_fraction = fraction;
  if ($("fit-new-version").checked) config.new_version = true;
  const [typedCategorical = "", typedIgnored = ""] = $("fit-columns-typed").value.split(";");
  const categorical = [...chosen("fit-categorical"), ...names(typedCategorical)];
  const ignored = [...chosen("fit-ignore"), ...names(typedIgnored)];
  if (categorical.length) config.categorical_features = categorical;
  if (ignored.length) config.ignore_columns = ignored;
  const file = $("fit-file").files[0];
  if ($("fit-from-capture").checked) config.from_capture = { name: config.name };
  else if (!file) return say("choose a file to train on (or the captured rows)");
  if (!file) {  // the captured rows alone: a JSON body
    return act(`fit ${config.name}`, () => request("POST", "/fit?wait=false", { config }));
  }
  if (!$("fit-target").value) return say("name the file's target column");
  const body = new FormData();
  body.append("file", file);
  body.append("target", $("fit-target").value);
  body.append("config", JSON.stringify(config));
  await act(`fit ${config.name}`, () => request("POST", "/fit?wait=false", body));
}

const chosen = (id) => [...$(id).selectedOptions].map((option) => option.value);
const names = (text) => text.split(",").map((name) => name.trim()).filter(Boolean);

// A CSV's columns, from its first line, to choose the categorical and left-out ones from.
async function onFitFile() {
  const file = $("fit-file").files[0];
  let columns = [];
  if (file && !file.name.toLowerCase().endsWith(".parquet")) {
    const head = await file.slice(0, 1 << 16).text();
    columns = names(head.split(/\r?\n/, 1)[0].replaceAll('"', ""));
  }
  for (const id of ["fit-categorical", "fit-ignore"]) {
    $(id).replaceChildren(...columns.map((name) => new Option(name, name)));
  }
}

async function onPredict(event) {
  event.preventDefault();
  const chosen = $("predict-model").value;
  if (!chosen) return say("load a model first");
  if (!$("predict-file").files.length) return say("choose a file to predict");
  const body = new FormData();
  body.append("file", $("predict-file").files[0]);
  body.append("config", chosen);
  const { name, version } = JSON.parse(chosen);
  const csv = await act(`predict with ${name}`, () => request("POST", "/predict", body, "text/csv"));
  if (!csv) return;
  const link = document.createElement("a");
  link.href = URL.createObjectURL(csv);
  link.download = `predictions-${name}-v${version}.csv`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
}

// One row's explanation as bars: typed values (a JSON X) or the first row of a file.
let explained = null;
async function onExplain() {
  const chosen = $("predict-model").value;
  if (!chosen) return say("load a model first");
  const config = JSON.parse(chosen);
  const values = $("explain-values").value.split(",").map((text) => text.trim());
  let body;
  if (values[0]) {
    const { features } = await fetchVersion(config.name, config.version);
    body = { X: [values.map((text, index) => typed(text, features?.[index]))], config };
  } else if ($("predict-file").files.length) {
    body = new FormData();
    body.append("file", $("predict-file").files[0]);
    body.append("config", chosen);
  } else {
    return say("type the row's values, or choose a file");
  }
  explained = await act(`explain with ${config.name}`, () => request("POST", "/explain", body));
  if (!explained) return;
  const outputs = explained.base_values.length;
  const labels = outputs === 1 ? [explained.classes[1]] : explained.classes;
  $("explain-output").replaceChildren(...labels.map((label, index) => new Option(String(label), String(index))));
  drawExplanation();
}

function drawExplanation() {
  if (explained) $("explain-result").replaceChildren(contributionBars(explained, 0, Number($("explain-output").value || 0)));
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  token.set($("token").value.trim());
  $("token").value = "";
  say("");
  connect();
});
$("forget-token").addEventListener("click", () => askForToken("token forgotten"));
document.addEventListener("click", onAction);
$("fit-form").addEventListener("submit", onFit);
$("fit-file").addEventListener("change", onFitFile);
$("predict-form").addEventListener("submit", onPredict);
$("explain-button").addEventListener("click", onExplain);
$("explain-output").addEventListener("change", drawExplanation);
watchMonitoring();
connect();
