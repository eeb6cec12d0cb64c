// The page of `lrcn serve`: pick a model, give it files, press Predict, see what comes back.
//
// Plain browser JavaScript, no build step and nothing loaded from elsewhere: the page is served
// by the API it calls (same origin, so no CORS) and must work on a machine without internet.
// Every text that comes from the server or a file name goes in through textContent (the h()
// helper below), never innerHTML, so a caption or a file name cannot inject markup.

"use strict";

const TOKEN_KEY = "lrcn.token";
const MODEL_KEY = "lrcn.model";

// describe() says each option's type but not whether predict needs it; these tasks refuse to
// run without their query, so the page asks for it before sending anything.
const REQUIRED = { vqa: ["question"], retrieval: ["text"] };
const PLACEHOLDERS = { question: "what colour is the circle?", text: "a red circle on the left" };
// An output option's help describes the file the CLI writes; here the server sends it back.
const OUTPUT_HELP = {
  attention: "draw the attention maps and show them here (attention models)",
  strip: "a picture of the context, the truth (when the video has it) and the prediction",
  out: "a video of the context, then the prediction",
};
const TASK_NAMES = {
  activity: "activity recognition",
  captioning: "image captioning",
  video_captioning: "video captioning",
  vqa: "visual question answering",
  retrieval: "text-image retrieval",
  next_frame: "next-frame prediction",
};
// The server sniffs a file's bytes; these only steer the browser's file picker.
const ACCEPT = {
  image: "image/*",
  video: "video/*,.avi,.mkv,.mov,.mp4,.m4v,.webm,.mpg,.mpeg,.ts,.flv,.wmv",
};

const state = {
  models: [],
  model: null, // the picked entry of /v1/models
  files: [], // the chosen File objects, in order
  previewUrls: [], // object URLs of the preview, revoked when the files change
  resultUrls: [], // object URLs the shown results use (they outlive a new file choice)
  busy: false,
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/** An element with attributes ("on..." become listeners) and children (text or nodes). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// localStorage throws in some private modes; the page must still work there, just forgetfully.
const storage = {
  get(key) {
    try { return localStorage.getItem(key); } catch { return null; }
  },
  set(key, value) {
    try {
      if (value) localStorage.setItem(key, value);
      else localStorage.removeItem(key);
    } catch { /* not kept: fine */ }
  },
};

const percent = (p) => `${(p * 100).toFixed(1)}%`;
const plural = (n, word) => `${n} ${word}${n === 1 ? "" : /(s|x|ch|sh)$/.test(word) ? "es" : "s"}`;

function fileSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(0)} KB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
}

/** Frame numbers as short runs: [3, 4, 5, 9] -> "3–5, 9". */
function frameRuns(numbers) {
  const runs = [];
  for (const n of numbers) {
    const last = runs[runs.length - 1];
    if (last && n === last[1] + 1) last[1] = n;
    else runs.push([n, n]);
  }
  return runs.map(([a, b]) => (a === b ? `${a}` : `${a}–${b}`)).join(", ");
}

/** The kind a file looks like to the browser ("image", "video" or null when it cannot tell). */
function kindOf(file) {
  if (file.type.startsWith("image/")) return "image";
  if (file.type.startsWith("video/")) return "video";
  const ext = `.${file.name.toLowerCase().split(".").pop()}`;
  return ACCEPT.video.split(",").includes(ext) ? "video" : null;
}

// ---------------------------------------------------------------------------------------------
// Talking to the API
// ---------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, detail, retryAfter = null) {
    super(detail);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/** fetch() with the token, returning the JSON body or throwing an ApiError with "detail". */
async function api(path, init = {}) {
  const headers = new Headers(init.headers || {});
  const token = storage.get(TOKEN_KEY);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  let response;
  try {
    response = await fetch(path, { ...init, headers });
  } catch {
    throw new ApiError(0, "the server cannot be reached; is lrcn serve still running?");
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const detail =
      body && typeof body.detail === "string"
        ? body.detail
        : `HTTP ${response.status} ${response.statusText}`.trim();
    if (response.status === 401) showTokenBox();
    throw new ApiError(response.status, detail, response.headers.get("Retry-After"));
  }
  return body;
}

async function checkHealth() {
  const el = $("health");
  try {
    const response = await fetch("/healthz");
    const body = await response.json();
    el.textContent = `${plural(body.models, "model")} served`;
    el.className = "health ok";
  } catch {
    el.textContent = "server unreachable";
    el.className = "health down";
  }
}

// ---------------------------------------------------------------------------------------------
// Messages: the error box, the token box, the busy button
// ---------------------------------------------------------------------------------------------

function showError(err) {
  const box = $("error");
  const status = err instanceof ApiError && err.status ? `Error ${err.status}` : "Error";
  const retry = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : "";
  box.replaceChildren(h("strong", {}, status), `${err.message}${retry}`);
  box.hidden = false;
}

function showFormProblem(message) {
  const box = $("form-problem");
  box.textContent = message || "";
  box.hidden = !message;
}

function hideError() {
  $("error").hidden = true;
}

function showTokenBox() {
  const box = $("token-box");
  box.hidden = false;
  $("token").value = storage.get(TOKEN_KEY) || "";
}

function saveToken() {
  storage.set(TOKEN_KEY, $("token").value.trim());
  hideError();
  checkHealth();
  loadModels();
}

function setBusy(busy) {
  state.busy = busy;
  const button = $("predict");
  button.disabled = busy || !state.model;
  button.setAttribute("aria-busy", String(busy));
  button.querySelector(".predict-text").textContent = busy ? "Predicting…" : "Predict";
}

// ---------------------------------------------------------------------------------------------
// The model picker and the form it shapes
// ---------------------------------------------------------------------------------------------

async function loadModels() {
  const select = $("model");
  try {
    const { models } = await api("/v1/models");
    state.models = models;
    select.replaceChildren(
      ...models.map((m) =>
        h("option", { value: m.name }, modelTitle(m)),
      ),
    );
    select.disabled = models.length === 0;
    if (models.length === 0) {
      select.replaceChildren(h("option", {}, "this server has no models"));
      return;
    }
    const saved = storage.get(MODEL_KEY);
    if (models.some((m) => m.name === saved)) select.value = saved;
    pickModel(select.value);
  } catch (err) {
    select.replaceChildren(h("option", {}, err.status === 401 ? "token needed" : "no models"));
    select.disabled = true;
    showError(err);
  }
}

/** "name — task · model · engine", the task left out where the name already says it. */
function modelTitle(m) {
  const parts = m.name === m.task ? [m.model, m.engine] : [m.task, m.model, m.engine];
  return `${m.name} — ${parts.join(" · ")}`;
}

function pickModel(name) {
  const model = state.models.find((m) => m.name === name);
  if (!model) return;
  const kindChanged = !state.model || state.model.input !== model.input;
  state.model = model;
  storage.set(MODEL_KEY, name);
  renderModelInfo(model);
  configureFileInput(model);
  renderOptions(model);
  // files of the other kind would only earn a 415; files of the same kind are kept, so one
  // picture can go through several models
  if (kindChanged) setFiles([]);
  else if (model.task !== "retrieval" && state.files.length > 1) setFiles(state.files.slice(0, 1));
  clearResults();
  showFormProblem(null);
  setBusy(false);
}

function renderModelInfo(model) {
  const tags = [TASK_NAMES[model.task] || model.task, model.model, model.engine, `reads ${model.input}s`];
  if (model.labels) tags.push(plural(model.labels.length, model.task === "vqa" ? "answer" : "class"));
  if (model.vocabulary_size) tags.push(`${model.vocabulary_size} words`);
  if (model.epoch !== null && model.epoch !== undefined) tags.push(`epoch ${model.epoch}`);
  // a few headline metrics, when the bundle recorded plain numbers
  for (const [key, value] of Object.entries(model.metrics || {}).slice(0, 3)) {
    if (typeof value === "number") tags.push(`${key} ${Number(value.toFixed(4))}`);
  }
  $("model-info").replaceChildren(...tags.map((t) => h("span", { class: "tag" }, t)));
}

function configureFileInput(model) {
  const input = $("file");
  const many = model.task === "retrieval"; // it ranks several images against one sentence
  input.accept = ACCEPT[model.input] || "";
  input.multiple = many;
  const what = many ? "images" : model.input === "video" ? "a video" : "an image";
  $("drop-text").replaceChildren(`Drop ${what} here or `, h("u", {}, "choose"));
}

function renderOptions(model) {
  const required = REQUIRED[model.task] || [];
  const texts = [];
  const numbers = [];
  const checks = [];
  for (const option of model.options) {
    const field = optionField(option, required.includes(option.name));
    if (option.type === "bool") checks.push(field);
    else if (option.type === "str") texts.push(field);
    else numbers.push(field);
  }
  const grid = numbers.length ? h("div", { class: "option-grid" }, numbers) : null;
  $("option-fields").replaceChildren(...texts, grid || "", ...checks);
  $("options").hidden = model.options.length === 0;
}

/** One option as a labelled input: text for str, number (with min) for int/float, a checkbox
 * for bool (an option that makes the server write a file is a bool on the wire). */
function optionField(option, required) {
  const id = `opt-${option.name}`;
  const hintId = `${id}-hint`;
  const title = option.name.replace(/_/g, " ");
  const help = option.output ? OUTPUT_HELP[option.name] || option.help : option.help;
  const hint = help ? h("p", { class: "hint", id: hintId }, help) : null;
  const described = hint ? hintId : null;
  if (option.type === "bool") {
    const input = h("input", { type: "checkbox", id, name: option.name, "aria-describedby": described });
    return h("div", { class: "option check" }, input, h("div", {}, h("label", { for: id }, title), hint));
  }
  const number = option.type === "int" || option.type === "float";
  const input = h("input", {
    id,
    name: option.name,
    type: number ? "number" : "text",
    min: number ? option.min : null,
    step: option.type === "int" ? 1 : number ? "any" : null,
    inputmode: option.type === "int" ? "numeric" : null,
    placeholder: number ? "default" : PLACEHOLDERS[option.name] || "",
    required,
    autocomplete: "off",
    "aria-describedby": described,
  });
  const label = h("label", { for: id }, title, required ? h("span", { class: "req", "aria-hidden": "true" }, "*") : null);
  return h("div", { class: "option" }, label, input, hint);
}

// ---------------------------------------------------------------------------------------------
// Files: the drop zone and the preview
// ---------------------------------------------------------------------------------------------

function setFiles(files) {
  state.files = Array.from(files);
  if (!$("file").multiple && state.files.length > 1) state.files = state.files.slice(0, 1);
  renderPreview();
  if (state.files.length) showFormProblem(null);
}

function renderPreview() {
  state.previewUrls.forEach((url) => URL.revokeObjectURL(url));
  state.previewUrls = [];
  const box = $("preview");
  box.classList.toggle("single", state.files.length === 1);
  box.replaceChildren(...state.files.map((file) => thumbnail(file)));
  if (state.files.length === 0) $("file").value = "";
}

function thumbnail(file) {
  const url = URL.createObjectURL(file);
  state.previewUrls.push(url);
  return h("figure", { class: "thumb" }, mediaElement(file, url, true), h("figcaption", { title: file.name }, `${file.name} · ${fileSize(file.size)}`));
}

/** An <img> or <video> of a local file; a placeholder where the browser cannot decode it
 * (an .avi, say: the server reads it even though this browser cannot show it). */
function mediaElement(file, url, controls) {
  const video = kindOf(file) === "video";
  const el = video
    ? h("video", { src: url, controls, muted: true, playsinline: true, preload: "metadata" })
    : h("img", { src: url, alt: `preview of ${file.name}` });
  el.addEventListener("error", () => {
    const ext = file.name.includes(".") ? file.name.split(".").pop() : "this file";
    el.replaceWith(h("div", { class: "no-preview" }, `no preview of .${ext} in this browser; the server reads it`));
  });
  return el;
}

function wireDropZone() {
  const zone = $("drop");
  const input = $("file");
  input.addEventListener("change", () => setFiles(input.files));
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    setFiles(event.dataTransfer.files);
  });
  // a file dropped beside the zone would otherwise make the browser navigate away to it
  for (const type of ["dragover", "drop"]) {
    window.addEventListener(type, (event) => event.preventDefault());
  }
}

// ---------------------------------------------------------------------------------------------
// Predict
// ---------------------------------------------------------------------------------------------

/** The first thing that keeps the form from being sent, as [message, element to focus]. */
function formProblem(model) {
  if (state.files.length === 0) {
    const what = model.task === "retrieval" ? "images" : `a ${model.input}`;
    return [`choose ${what} first`, $("file")];
  }
  for (const option of model.options) {
    const input = $(`opt-${option.name}`);
    if (!input || option.type === "bool") continue;
    if (input.required && !input.value.trim()) {
      return [`"${option.name.replace(/_/g, " ")}" is needed: ${option.help || "fill it in"}`, input];
    }
    if (!input.validity.valid) return [`${option.name}: ${input.validationMessage}`, input];
  }
  return null;
}

/** The form fields the server reads: only what the user set, so the bundle's defaults apply. */
function optionFields(model) {
  const fields = [];
  for (const option of model.options) {
    const input = $(`opt-${option.name}`);
    if (!input) continue;
    if (option.type === "bool") {
      if (input.checked) fields.push([option.name, "true"]);
    } else if (input.value.trim() !== "") {
      fields.push([option.name, input.value.trim()]);
    }
  }
  return fields;
}

async function predict(event) {
  event.preventDefault();
  const model = state.model;
  if (state.busy || !model) return;
  const problem = formProblem(model);
  if (problem) {
    // said beside the Predict button: on a phone the results card is out of sight
    showFormProblem(problem[0]);
    problem[1].focus();
    return;
  }
  showFormProblem(null);
  const files = state.files.slice(); // what was sent, whatever is chosen while it runs
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name);
  for (const [name, value] of optionFields(model)) form.append(name, value);
  hideError();
  setBusy(true);
  const started = performance.now();
  try {
    const body = await api(`/v1/models/${encodeURIComponent(model.name)}/predict`, {
      method: "POST",
      body: form,
    });
    renderResults(body, files, performance.now() - started);
  } catch (err) {
    showError(err);
  } finally {
    setBusy(false);
    revealResults();
  }
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/** On a one-column (phone) layout the results sit below the form, out of sight: bring them up. */
function revealResults() {
  const card = $("results-title");
  if (card.getBoundingClientRect().top > window.innerHeight * 0.6) {
    const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    card.scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "start" });
  }
}

function clearResults() {
  state.resultUrls.forEach((url) => URL.revokeObjectURL(url));
  state.resultUrls = [];
  $("timing").textContent = "";
  hideError();
  $("results").replaceChildren(
    h("p", { class: "empty" }, "Pick a model, add a file and press ", h("strong", {}, "Predict"), "."),
  );
}

function renderResults(body, files, elapsedMs) {
  clearResults();
  // results name their file by the name the client gave; match them back in order, so two
  // files with one name still each find a file
  const sent = files.map((file) => ({ file, url: URL.createObjectURL(file), taken: false }));
  state.resultUrls = sent.map((s) => s.url);
  const take = (name) => {
    const found = sent.find((s) => !s.taken && s.file.name === name);
    if (found) found.taken = true;
    return found || null;
  };
  const nodes =
    body.task === "retrieval"
      ? [renderRetrieval(body.results, take)]
      : body.results.map((result) => renderResult(body.task, result, take(result.input)));
  if (body.files && Object.keys(body.files).length) nodes.push(downloads(body.files));
  $("results").replaceChildren(...nodes);
  const t = body.timing || {};
  $("timing").textContent =
    `${body.model} · queue ${t.queue_ms} ms · predict ${t.predict_ms} ms · ` +
    `batch of ${t.batch_size} · ${Math.round(elapsedMs)} ms in all`;
}

const RENDERERS = {
  activity: renderActivity,
  captioning: renderCaptioning,
  video_captioning: renderCaptioning,
  vqa: renderVqa,
  next_frame: renderNextFrame,
};

function renderResult(task, result, sent) {
  const article = h("article", { class: "result" }, h("h3", { class: "result-name" }, result.input));
  if ("error" in result) {
    article.append(h("div", { class: "error" }, h("strong", {}, "Error"), result.error));
    return article;
  }
  const render = RENDERERS[task] || renderFacts;
  article.append(...[render(result, sent, task)].flat());
  return article;
}

/** Horizontal bars: items are {label, value, shown}; width is value (0..1) of the track. */
function barList(items, name) {
  return h(
    "ol",
    { class: "bars", "aria-label": name },
    items.map((item) =>
      h(
        "li",
        { class: "bar-row" },
        h("span", { class: "bar-label", title: item.label }, item.label),
        h(
          "span",
          { class: "bar-track", "aria-hidden": "true" },
          h("span", { class: "bar-fill", style: `width: ${Math.max(0, Math.min(1, item.value)) * 100}%` }),
        ),
        h("span", { class: "bar-value" }, item.shown ?? percent(item.value)),
      ),
    ),
  );
}

function renderActivity(result) {
  const bars = barList(
    result.top.map((t) => ({ label: t.class, value: t.probability })),
    "most likely classes",
  );
  return [bars, h("p", { class: "note" }, `class probabilities from ${plural(result.clips, "clip")} of the video`)];
}

function renderCaptioning(result, sent, task) {
  const nodes = [h("p", { class: "caption" }, result.caption || "(an empty caption)")];
  if (result.n_best && result.n_best.length > 1) {
    nodes.push(
      h(
        "ol",
        { class: "n-best", "aria-label": "best captions" },
        result.n_best.map((c) =>
          h("li", {}, c.caption || "(empty)", h("span", { class: "score" }, `log p ${c.log_prob.toFixed(2)}`)),
        ),
      ),
    );
  }
  const words = result.attention_words || [];
  if (words.length) {
    nodes.push(task === "video_captioning" ? frameAttention(words) : imageAttention(words, sent));
  }
  if (result.attention) nodes.push(figure(result.attention, "the server's attention figure", false));
  return nodes;
}

function renderVqa(result) {
  const nodes = [h("p", { class: "question" }, h("span", {}, "Q: "), result.question)];
  const scores = result.answers.map((a) => a.score);
  const probabilities = scores.every((s) => s >= 0 && s <= 1);
  nodes.push(
    barList(
      result.answers.map((a) => ({
        label: a.answer,
        value: probabilities ? a.score : a.score / Math.max(...scores),
        shown: probabilities ? percent(a.score) : a.score.toFixed(3),
      })),
      "answers",
    ),
  );
  if (result.unknown_words && result.unknown_words.length) {
    nodes.push(h("p", { class: "note" }, `not in the model's vocabulary: ${result.unknown_words.join(", ")}`));
  }
  if (result.attention) nodes.push(figure(result.attention, "attention over the image", true));
  return nodes;
}

function renderRetrieval(results, take) {
  const ranked = results.filter((r) => !("error" in r)).sort((a, b) => a.rank - b.rank);
  const failed = results.filter((r) => "error" in r);
  const first = ranked[0] || {};
  const unknown = first.unknown_words || [];
  return h(
    "article",
    { class: "result" },
    first.text ? h("p", { class: "query" }, h("span", { class: "hint" }, "ranked by "), `“${first.text}”`) : null,
    unknown.length ? h("p", { class: "note" }, `not in the model's vocabulary: ${unknown.join(", ")}`) : null,
    h(
      "ol",
      { class: "ranked", "aria-label": "images ranked by the sentence" },
      ranked.map((r) => rankedImage(r, take(r.input))),
    ),
    failed.map((r) => h("div", { class: "error" }, h("strong", {}, r.input), r.error)),
  );
}

function rankedImage(result, sent) {
  // cosine scores lie in [-1, 1]; the bar shows the positive part, the number tells all
  const picture = sent ? mediaElement(sent.file, sent.url, false) : h("div", { class: "no-preview" });
  if (picture.tagName === "IMG") picture.alt = `rank ${result.rank}: ${result.input}`;
  return h(
    "li",
    {},
    picture,
    h(
      "div",
      { class: "info" },
      h("span", { class: "rank" }, `#${result.rank}`),
      ` score ${result.score.toFixed(3)}`,
      h("span", { class: "bar-track", "aria-hidden": "true", style: "display: block" },
        h("span", { class: "bar-fill", style: `width: ${Math.max(0, result.score) * 100}%` })),
      h("div", { class: "name", title: result.input }, result.input),
    ),
  );
}

function renderNextFrame(result) {
  const nodes = [renderFacts(result)];
  if (result.strip) nodes.push(figure(result.strip, "context, truth and prediction, as rows", true));
  if (result.out) {
    const video = h("video", { class: "media-out", src: result.out, controls: true, muted: true, loop: true, playsinline: true });
    // the server writes MPEG-4 Part 2, which some browsers (Chromium) do not play
    video.addEventListener("error", () =>
      video.replaceWith(h("p", { class: "note" }, "this browser cannot play the server's video; download it instead")),
    );
    nodes.push(
      video,
      h("div", { class: "downloads" }, h("a", { href: result.out, download: "prediction.mp4" }, "download the video")),
    );
  }
  if (!result.strip && !result.out) {
    nodes.push(h("p", { class: "note" }, "tick strip or out to see the frames"));
  }
  return nodes;
}

/** The result's plain fields as a definition list (data URLs and the input name left out). */
function renderFacts(result) {
  const rows = [];
  for (const [key, value] of Object.entries(result)) {
    if (key === "input" || (typeof value === "string" && value.startsWith("data:"))) continue;
    rows.push(h("dt", {}, key.replace(/_/g, " ")), h("dd", {}, factText(key, value)));
  }
  return h("dl", { class: "facts" }, rows);
}

function factText(key, value) {
  if (Array.isArray(value) && value.every(Number.isInteger) && key.endsWith("frames")) return frameRuns(value) || "none";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

function figure(src, caption, open) {
  return h(
    "details",
    { class: "figure", open },
    h("summary", {}, caption),
    h("img", { src, alt: caption, loading: "lazy" }),
  );
}

function downloads(files) {
  return h(
    "div",
    { class: "downloads" },
    Object.entries(files).map(([name, url]) => h("a", { href: url, download: name.split("/").pop() }, name)),
  );
}

// ---------------------------------------------------------------------------------------------
// Attention, stepped word by word
// ---------------------------------------------------------------------------------------------

/** Prev/next buttons, the current word and a clickable chip per word; show(i) draws word i.
 * Arrow keys, Home and End step too while focus is inside. */
function wordStepper(words, show) {
  let current = 0;
  const label = h("span", { class: "current", "aria-live": "polite" });
  const prev = h("button", { type: "button", class: "prev", "aria-label": "previous word", onclick: () => select(current - 1) }, "‹");
  const next = h("button", { type: "button", class: "next", "aria-label": "next word", onclick: () => select(current + 1) }, "›");
  const chips = words.map((w, i) =>
    h("button", { type: "button", class: /^<.*>$/.test(w.word) ? "word special" : "word", "aria-pressed": "false", onclick: () => select(i) }, w.word),
  );
  function select(i) {
    current = Math.max(0, Math.min(words.length - 1, i));
    chips.forEach((chip, j) => chip.setAttribute("aria-pressed", String(j === current)));
    // aria-disabled, not disabled: a disabled button drops the keyboard focus
    prev.setAttribute("aria-disabled", String(current === 0));
    next.setAttribute("aria-disabled", String(current === words.length - 1));
    label.replaceChildren(`word ${current + 1} of ${words.length}: `, h("strong", {}, words[current].word));
    show(current);
  }
  const keys = { ArrowLeft: -1, ArrowRight: 1 };
  const onkeydown = (event) => {
    if (event.key in keys) select(current + keys[event.key]);
    else if (event.key === "Home") select(0);
    else if (event.key === "End") select(words.length - 1);
    else return;
    event.preventDefault();
  };
  const box = h(
    "div",
    { class: "stepper-box", onkeydown },
    h("div", { class: "stepper" }, prev, label, next),
    h("div", { class: "words", role: "group", "aria-label": "words of the caption" }, chips),
  );
  select(0);
  return box;
}

/** The picture as the model saw it, with the chosen word's attention map over it. */
function imageAttention(words, sent) {
  const side = 420; // the largest it is shown (CSS pixels); the backing store is sharper
  const scale = window.devicePixelRatio || 1;
  const canvas = h("canvas", {
    class: "attention-canvas",
    width: Math.round(side * scale),
    height: Math.round(side * scale),
    role: "img",
    "aria-label": "attention map over the image",
  });
  // One scale for the whole caption, as the server's figure has it: a word whose attention is
  // spread thin shows faint everywhere instead of looking as sharp as a focused one.
  const peak = Math.max(...words.flatMap((w) => w.map.flat()), 1e-12);
  const uniform = 1 / words[0].map.flat().length;
  const weights = h("p", { class: "note" });
  const picture = loadImage(sent && sent.url);
  const stepper = wordStepper(words, (i) => {
    const top = Math.max(...words[i].map.flat());
    canvas.setAttribute("aria-label", `attention map of "${words[i].word}" over the image`);
    weights.textContent =
      `one colour scale for the whole caption; this word's largest weight is ` +
      `${top.toFixed(3)} (spread evenly, each cell would get ${uniform.toFixed(3)})`;
    picture.then((img) => drawAttention(canvas, img, words[i].map, peak));
  });
  const legend = h(
    "div",
    { class: "legend" },
    "none",
    h("span", { class: "ramp", "aria-hidden": "true" }),
    "most attention",
  );
  return h(
    "section",
    { class: "attention" },
    h("h3", {}, "Where the model looked, word by word"),
    h("div", { class: "attention-body image" }, canvas, h("div", {}, stepper, legend, weights)),
  );
}

function loadImage(url) {
  return new Promise((resolve) => {
    if (!url) return resolve(null);
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => resolve(null);
    img.src = url;
  });
}

function drawAttention(canvas, img, map, peak) {
  const ctx = canvas.getContext("2d");
  const size = canvas.width;
  ctx.clearRect(0, 0, size, size);
  if (img) {
    // The map covers the centre square the model cropped. The model first resizes the short
    // side and then crops slightly inside it; the centre square of the short side is the
    // closest the page can get without the bundle's transform sizes.
    const crop = Math.min(img.naturalWidth, img.naturalHeight);
    const left = (img.naturalWidth - crop) / 2;
    const top = (img.naturalHeight - crop) / 2;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(img, left, top, crop, crop, 0, 0, size, size);
  } else {
    ctx.fillStyle = "#9aa5b1";
    ctx.fillRect(0, 0, size, size);
  }
  ctx.imageSmoothingEnabled = true; // upscale the coarse grid smoothly, as a heat map
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(heatMap(map, peak), 0, 0, size, size);
}

/** A side x side canvas: each cell coloured by its weight over ``peak``, and as opaque, so the
 * picture stays clear where the model did not look. */
function heatMap(map, peak) {
  const rows = map.length;
  const cols = map[0].length;
  const off = document.createElement("canvas");
  off.width = cols;
  off.height = rows;
  const ctx = off.getContext("2d");
  const pixels = ctx.createImageData(cols, rows);
  map.flat().forEach((weight, i) => {
    const t = Math.max(0, weight / peak);
    const [r, g, b] = ramp(t);
    pixels.data.set([r, g, b, Math.round(255 * 0.6 * t)], i * 4);
  });
  ctx.putImageData(pixels, 0, 0);
  return off;
}

/** A blue-yellow-red colour ramp (ColorBrewer RdYlBu, reversed) at t in 0..1. */
function ramp(t) {
  const stops = [
    [49, 54, 149],
    [69, 117, 180],
    [254, 224, 144],
    [244, 109, 67],
    [165, 0, 38],
  ];
  const x = Math.min(0.9999, Math.max(0, t)) * (stops.length - 1);
  const i = Math.floor(x);
  const f = x - i;
  return stops[i].map((c, k) => Math.round(c + (stops[i + 1][k] - c) * f));
}

/** Per word, its attention weight on each sampled frame, as a row of columns. */
function frameAttention(words) {
  // one scale for every word, so a word that spreads its attention looks flatter than one
  // that fixes on a frame
  const peak = Math.max(...words.flatMap((w) => w.weights), 1e-12);
  const frameNumbers = words[0].frames || words[0].weights.map((_, i) => i);
  const columns = frameNumbers.map((n) =>
    h(
      "div",
      { class: "frame" },
      h("span", { class: "w" }),
      h("span", { class: "col" }),
      h("span", { class: "num" }, `#${n}`),
    ),
  );
  const chart = h("div", { class: "frames", role: "img", "aria-label": "attention over frames" }, columns);
  const stepper = wordStepper(words, (i) => {
    const weights = words[i].weights;
    columns.forEach((column, j) => {
      const w = weights[j] ?? 0;
      column.querySelector(".col").style.height = `${(w / peak) * 100}%`;
      column.querySelector(".w").textContent = w.toFixed(2);
    });
    chart.setAttribute(
      "aria-label",
      `attention of "${words[i].word}" over frames: ` +
        weights.map((w, j) => `frame ${frameNumbers[j]} ${w.toFixed(2)}`).join(", "),
    );
  });
  return h(
    "section",
    { class: "attention" },
    h("h3", {}, "Which frames each word looked at"),
    h("div", { class: "attention-body video" }, stepper, chart, h("p", { class: "note" }, "columns: weight per sampled frame (frame numbers below)")),
  );
}

// ---------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------

function start() {
  $("ask").addEventListener("submit", predict);
  $("model").addEventListener("change", (event) => pickModel(event.target.value));
  $("token-save").addEventListener("click", saveToken);
  $("token").addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault(); // not a Predict
      saveToken();
    }
  });
  wireDropZone();
  if (storage.get(TOKEN_KEY)) showTokenBox();
  checkHealth();
  loadModels();
}

start();
