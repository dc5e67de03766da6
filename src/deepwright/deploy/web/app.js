// The deepwright web page: a model card, a form built from /metadata for one prediction, a CSV upload whose
// predictions come back as a downloadable file, and (for language models) a prompt with streamed output.
// Plain browser JavaScript, no build step and nothing fetched from elsewhere. Every text from the model goes
// through textContent, never innerHTML.
"use strict";

const state = { metadata: null, token: sessionStorage.getItem("deepwright-token") || "" };
const $ = (id) => document.getElementById(id);

function element(tag, properties = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, properties);
  for (const child of children) node.append(child);
  return node;
}

class HttpError extends Error {
  constructor(status, body) {
    super((body && body.error) || `the server answered ${status}`);
    this.status = status;
    this.problems = (body && body.problems) || [];
  }
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (state.token) headers.set("Authorization", `Bearer ${state.token}`);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) $("auth").hidden = false;
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch (ignored) { /* not JSON */ }
    throw new HttpError(response.status, body);
  }
  return response;
}

function show(node, text) {
  node.textContent = text;
  node.hidden = !text;
}

function formatNumber(value) {
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return String(value);
  return Math.abs(value) >= 1000 || Math.abs(value) < 0.001 ? value.toPrecision(4) : value.toFixed(4);
}

// -- the model card ---------------------------------------------------------------------------------------

function fillTable(table, header, rows) {
  table.replaceChildren();
  table.append(element("thead", {}, [element("tr", {}, header.map((text) => element("th", { textContent: text })))]));
  const body = element("tbody");
  for (const row of rows) {
    body.append(element("tr", {}, row.map((value) =>
      element("td", { textContent: formatNumber(value), className: typeof value === "number" ? "number" : "" }))));
  }
  table.append(body);
}

function metricRows(metrics) {
  const splits = Object.keys(metrics);
  const names = [];
  const values = {};
  for (const split of splits) {
    for (const [key, value] of Object.entries(metrics[split] || {})) {
      const entries = typeof value === "number" ? [[key, value]]
        : Object.entries(value || {}).filter(([, v]) => typeof v === "number").map(([m, v]) => [`${key} ${m}`, v]);
      for (const [name, number] of entries) {
        if (!(name in values)) { values[name] = {}; names.push(name); }
        values[name][split] = number;
      }
    }
  }
  return { splits, rows: names.map((name) => [name, ...splits.map((split) => values[name][split] ?? "")]) };
}

async function renderCard(metadata) {
  document.title = `deepwright: ${metadata.name}`;
  $("title").textContent = metadata.name;
  const created = metadata.created ? `saved ${metadata.created}, ` : "";
  $("subtitle").textContent = `${metadata.model_type} model, ${created}served with ${metadata.runtime || "torch"}`;
  fillTable($("inputs-table"), ["name", "type", "request", "description"],
    metadata.inputs.map((input) => [input.name, input.type, input.request_type, input.description]));
  fillTable($("outputs-table"), ["name", "type", "classes", "result columns"],
    metadata.outputs.map((output) => [output.name, output.type, (output.classes || []).join(", "),
      (output.columns || []).join(", ")]));
  const metrics = metricRows(metadata.metrics || {});
  fillTable($("metrics-table"), ["metric", ...metrics.splits], metrics.rows);
  const versions = metadata.versions || {};
  $("versions").textContent = ["bundle", "server"].map((side) =>
    `${side}: ${Object.entries(versions[side] || {}).map(([k, v]) => `${k} ${v}`).join(", ")}`).join(" · ");
  const plots = $("plots");
  plots.replaceChildren();
  for (const name of metadata.plots || []) {
    const image = element("img", { alt: name });
    plots.append(element("figure", {}, [image, element("figcaption", { textContent: name })]));
    api(`plots/${encodeURIComponent(name)}`).then((response) => response.blob())
      .then((blob) => { image.src = URL.createObjectURL(blob); }).catch(() => { image.alt = `${name} (unavailable)`; });
  }
}

// -- one prediction ---------------------------------------------------------------------------------------

// One form control per input, from its request type and hints; returns the control and any node it needs beside it.
function buildControl(input, index) {
  const id = `input-${index}`;
  const choices = input.choices || [];
  const example = input.example === undefined ? null : input.example;
  if (input.request_type === "label" && choices.length && !input.open_choices) {
    const select = element("select", { id, name: input.name });
    if (input.nullable) select.append(element("option", { value: "null", textContent: "(missing)" }));
    for (const choice of choices) {
      select.append(element("option", { value: JSON.stringify(choice), textContent: String(choice) }));
    }
    if (example !== null) select.value = JSON.stringify(example);
    return [select];
  }
  if (input.request_type === "text") return [element("textarea", { id, name: input.name, rows: 3, value: example ?? "" })];
  if (input.request_type === "media") return [element("input", { id, name: input.name, type: "file", accept: input.accept || "" })];
  const control = element("input", { id, name: input.name, type: input.request_type === "number" ? "number" : "text" });
  if (input.request_type === "number") control.step = "any";
  if (example !== null) control.value = typeof example === "string" ? example : JSON.stringify(example);
  if (!choices.length) return [control];
  const list = element("datalist", { id: `${id}-choices` });  // known values offered, any value accepted
  for (const choice of choices) list.append(element("option", { value: String(choice) }));
  control.setAttribute("list", list.id);
  return [control, list];
}

function renderForm(metadata) {
  const fields = $("fields");
  fields.replaceChildren();
  metadata.inputs.forEach((input, index) => {
    const [control, ...beside] = buildControl(input, index);
    let hint = input.description;
    if (input.request_type === "media" && input.example) hint += " Without a file, the model's example is sent.";
    fields.append(element("div", { className: "field" }, [
      element("label", { htmlFor: control.id, textContent: input.name }),
      control,
      ...beside,
      element("span", { className: "hint", textContent: hint }),
      element("span", { className: "field-error", id: `error-${index}`, hidden: true }),
    ]));
  });
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(new Error(`cannot read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

async function formRow(metadata) {
  const row = {};
  for (const [index, input] of metadata.inputs.entries()) {
    const control = $(`input-${index}`);
    let value;
    if (control.tagName === "SELECT") {
      value = JSON.parse(control.value);
    } else if (input.request_type === "media") {
      value = control.files.length ? await readFile(control.files[0]) : (input.example ?? null);
    } else if (input.request_type === "text") {
      value = control.value;
    } else if (control.value.trim() === "") {
      value = null;
    } else if (input.request_type === "number") {
      value = Number(control.value);
    } else if (input.request_type === "any" || input.request_type === "list") {
      try { value = JSON.parse(control.value); } catch (ignored) { value = control.value; }
    } else {
      value = control.value;
    }
    row[input.name] = value;
  }
  return row;
}

function clearErrors(metadata) {
  metadata.inputs.forEach((input, index) => show($(`error-${index}`), ""));
  show($("predict-error"), "");
}

function showProblems(metadata, error) {
  show($("predict-error"), error.message);
  for (const problem of error.problems) {
    const index = metadata.inputs.findIndex((input) => input.name === problem.field);
    if (index >= 0) show($(`error-${index}`), problem.message);
  }
}

function renderResult(metadata, prediction) {
  const result = $("result");
  result.replaceChildren();
  for (const output of metadata.outputs) {
    const box = element("div", { className: "output" });
    const predicted = prediction[`${output.name}_prediction`];
    const probability = prediction[`${output.name}_probability`];
    box.append(element("div", { className: "muted", textContent: output.name }));
    box.append(element("div", { className: "value prediction", textContent: formatNumber(predicted) }));
    const classes = output.classes || [];
    const perClass = classes.filter((label) => `${output.name}_probability_${label}` in prediction);
    if (perClass.length) {
      for (const label of perClass) box.append(bar(String(label), prediction[`${output.name}_probability_${label}`]));
    } else if (typeof probability === "number" && classes.length === 2) {
      box.append(bar(String(classes[1]), probability));
      box.append(bar(String(classes[0]), 1 - probability));
    }
    result.append(box);
  }
}

function bar(label, share) {
  const fill = element("div", { className: "fill" });
  fill.style.width = `${Math.max(0, Math.min(1, share)) * 100}%`;
  return element("div", { className: "bar" }, [
    element("span", { textContent: label }),
    element("div", { className: "track" }, [fill]),
    element("span", { className: "probability", textContent: share.toFixed(3) }),
  ]);
}

async function onPredict(event) {
  event.preventDefault();
  const metadata = state.metadata;
  clearErrors(metadata);
  $("predict-button").disabled = true;
  try {
    const row = await formRow(metadata);
    const response = await api("predict", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ rows: [row] }),
    });
    const body = await response.json();
    renderResult(metadata, body.predictions[0]);
  } catch (error) {
    $("result").replaceChildren();
    if (error instanceof HttpError) showProblems(metadata, error); else show($("predict-error"), error.message);
  } finally {
    $("predict-button").disabled = false;
  }
}

// -- a CSV file -------------------------------------------------------------------------------------------

function parseCsv(text, limit) {
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length && rows.length < limit; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n") { row.push(cell); rows.push(row); row = []; cell = ""; }
    else if (c !== "\r") cell += c;
  }
  if ((cell || row.length) && rows.length < limit) { row.push(cell); rows.push(row); }
  return rows;
}

async function onCsv(event) {
  event.preventDefault();
  const file = $("csv-file").files[0];
  const status = $("csv-status");
  const link = $("csv-download");
  link.hidden = true;
  $("csv-preview").hidden = true;
  if (!file) { status.textContent = "choose a CSV file first"; return; }
  status.textContent = `predicting ${file.name}…`;
  $("csv-button").disabled = true;
  try {
    const form = new FormData();
    form.append("file", file);
    const response = await api("predict?format=csv", { method: "POST", body: form });
    const text = await response.text();
    const lines = text.split("\n").filter((line) => line.length).length - 1;
    const name = `${file.name.replace(/\.[^.]*$/, "") || "rows"}-predictions.csv`;
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    link.download = name;
    link.textContent = `Download ${name}`;
    link.hidden = false;
    status.textContent = `${lines} rows predicted`;
    const preview = parseCsv(text, 11);
    fillTable($("csv-preview"), preview[0] || [], preview.slice(1).map((row) => row.map((v) => (v !== "" && !isNaN(v) ? Number(v) : v))));
    $("csv-preview").hidden = false;
  } catch (error) {
    status.textContent = "";
    status.append(element("span", { className: "error", textContent: error.message }));
  } finally {
    $("csv-button").disabled = false;
  }
}

// -- text generation --------------------------------------------------------------------------------------

async function onGenerate(event) {
  event.preventDefault();
  const output = $("generated");
  output.textContent = "";
  $("generate-button").disabled = true;
  try {
    const response = await api("generate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        prompt: $("prompt").value, stream: true,
        max_new_tokens: Number($("max-new-tokens").value), temperature: Number($("temperature").value),
      }),
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split("\n").find((line) => line.startsWith("data: "));
        if (data && !event.startsWith("event: end")) output.textContent += JSON.parse(data.slice(6)).text;
      }
    }
  } catch (error) {
    output.append(element("span", { className: "error", textContent: `\n${error.message}` }));
  } finally {
    $("generate-button").disabled = false;
  }
}

// -- start ------------------------------------------------------------------------------------------------

async function load() {
  show($("page-error"), "");
  try {
    const metadata = await (await api("metadata")).json();
    state.metadata = metadata;
    $("auth").hidden = true;
    $("main").hidden = false;
    $("try").hidden = !metadata.can_predict;
    $("batch").hidden = !metadata.can_predict;
    $("generate").hidden = !metadata.can_generate;
    if (metadata.can_predict) renderForm(metadata);
    await renderCard(metadata);
    document.body.dataset.ready = "true";
  } catch (error) {
    if (!(error instanceof HttpError && error.status === 401)) show($("page-error"), error.message);
    else $("subtitle").textContent = "this server needs a token";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("auth-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.token = $("token").value.trim();
    sessionStorage.setItem("deepwright-token", state.token);
    load();
  });
  $("predict-form").addEventListener("submit", onPredict);
  $("csv-form").addEventListener("submit", onCsv);
  $("generate-form").addEventListener("submit", onGenerate);
  load();
});
