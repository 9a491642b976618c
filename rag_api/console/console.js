// The rag-ingest console: plain JavaScript over the public REST API.
// The key lives in sessionStorage only (gone when the tab closes) and goes out as
// `Authorization: Bearer <key>`. The API decides what a key may do; the console only hides
// what the key's role (GET /keys/me) could not do anyway.
"use strict";

const KEY = "rag-ingest-key";
const RANK = { reader: 0, writer: 1, admin: 2 };
const DAGSTER_UI = `${location.protocol}//${location.hostname}:3000`;
const PAGE = 25;
let me = null;
let docsOffset = 0;
let editing = null;

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function may(role) {
  return me !== null && RANK[me.role] >= RANK[role];
}

function headers() {
  const key = sessionStorage.getItem(KEY);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || { code: "error", message: `HTTP ${status}` };
    super(error.message);
    this.status = status;
    this.code = error.code;
    this.detail = error.detail;
  }
}

async function api(method, path, { json, form } = {}) {
  const init = { method, headers: headers() };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (form !== undefined) {
    init.body = form;
  }
  const response = await fetch(path, init);
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    if (response.status === 401 && path !== "/keys/me") signOut("Your key was refused: sign in again.");
    throw new ApiError(response.status, body);
  }
  return body;
}

function describe(error) {
  const detail = Array.isArray(error.detail)
    ? ": " + error.detail.map((d) => `${d.field} ${d.message}`).join("; ")
    : "";
  return `${error.message}${detail}${error.code ? ` (${error.code})` : ""}`;
}

function flash(message) {
  $("flash").textContent = message;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function parseJson(text, what) {
  if (!text.trim()) return undefined;
  try {
    const value = JSON.parse(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) throw new Error();
    return value;
  } catch {
    throw new ApiError(0, { error: { code: "invalid_json", message: `${what} must be a JSON object` } });
  }
}

// Sign in and out.

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    me = await api("GET", "/keys/me");
  } catch (error) {
    sessionStorage.removeItem(KEY);
    me = null;
    throw error;
  }
  for (const node of document.querySelectorAll("[data-role]")) {
    node.hidden = !may(node.dataset.role);
  }
  $("nav").hidden = false;
  const scope = me.collections === "*" ? "every collection" : me.collections.join(", ");
  $("who").textContent = `${me.role} · ${scope}`;
}

function signOut(message = "") {
  sessionStorage.removeItem(KEY);
  me = null;
  $("nav").hidden = true;
  $("who").textContent = "";
  flash(message);
  location.hash = "#/signin";
  route();
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("signin-error").textContent = "";
  try {
    await signIn($("signin-key").value);
    $("signin-key").value = "";
    flash("");
    location.hash = "#/collections";
  } catch (error) {
    $("signin-error").textContent = `Could not sign in: ${describe(error)}`;
  }
});
$("sign-out").addEventListener("click", () => signOut("Signed out."));

// Routing: #/view or #/documents/<id>.

const VIEWS = {
  signin: () => {},
  collections: showCollections,
  upload: showUpload,
  documents: showDocuments,
  document: showDocument,
  search: showSearch,
  schedules: showSchedules,
};

async function route() {
  let [name, arg] = location.hash.split("?")[0].replace(/^#\/?/, "").split("/");
  if (name === "documents" && arg) name = "document";
  if (!me && sessionStorage.getItem(KEY) !== null) {
    try {
      await signIn(sessionStorage.getItem(KEY));
    } catch {
      /* signed out below */
    }
  }
  if (!me) name = "signin";
  else if (!VIEWS[name] || name === "signin" || (name === "upload" && !may("writer"))) {
    name = "collections";
  }
  for (const view of document.querySelectorAll(".view")) view.hidden = view.id !== `view-${name}`;
  for (const link of document.querySelectorAll("#nav a")) {
    const current = link.getAttribute("href") === `#/${name === "document" ? "documents" : name}`;
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const heading = document.querySelector(`#view-${name} h1`);
  try {
    await VIEWS[name](arg && decodeURIComponent(arg));
  } catch (error) {
    flash(`Could not load: ${describe(error)}`);
  }
  if (heading && document.activeElement === document.body) $("main").focus();
}

window.addEventListener("hashchange", () => {
  flash("");
  route();
});

async function collectionNames() {
  const collections = await api("GET", "/collections");
  return collections.map((c) => c.name);
}

function fillSelect(select, names, first) {
  const keep = select.value;
  select.replaceChildren(...(first ? [el("option", { value: "", text: first })] : []));
  for (const name of names) select.append(el("option", { value: name, text: name }));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

// Collections and keys.

async function showCollections() {
  const collections = await api("GET", "/collections");
  $("collections-rows").replaceChildren(
    ...collections.map((c) => {
      const counts = Object.entries(c.by_status || {}).map(([s, n]) => `${s} ${n}`);
      const chunks = c.chunk_size ? `${c.chunk_size} / ${c.chunk_overlap ?? "default"}` : "default";
      const row = el(
        "tr",
        { "data-collection": c.name },
        el("th", { scope: "row" }, el("a", { href: `#/documents?collection=${encodeURIComponent(c.name)}`, text: c.name })),
        el("td", { text: c.description }),
        el("td", { text: chunks }),
        el("td", { class: "counts", text: counts.join(" · ") || "none" }),
      );
      if (may("admin")) {
        row.append(
          el(
            "td",
            {},
            el("button", { type: "button", text: "Edit", "aria-label": `Edit ${c.name}`, onclick: () => editCollection(c) }),
            " ",
            el("button", {
              type: "button",
              class: "danger",
              text: "Delete",
              "aria-label": `Delete ${c.name}`,
              onclick: () => deleteCollection(c.name),
            }),
          ),
        );
      }
      return row;
    }),
  );
  if (may("admin")) await showKeys();
}

function editCollection(collection) {
  editing = collection.name;
  $("collection-form-title").textContent = `Edit ${collection.name}`;
  $("collection-name").value = collection.name;
  $("collection-name").disabled = true;
  $("collection-description").value = collection.description;
  $("collection-chunk-size").value = collection.chunk_size ?? "";
  $("collection-chunk-overlap").value = collection.chunk_overlap ?? "";
  $("collection-submit").textContent = "Save changes";
  $("collection-cancel").hidden = false;
  $("collection-description").focus();
}

function resetCollectionForm() {
  editing = null;
  $("collection-form").reset();
  $("collection-name").disabled = false;
  $("collection-form-title").textContent = "New collection";
  $("collection-submit").textContent = "Create collection";
  $("collection-cancel").hidden = true;
}

$("collection-cancel").addEventListener("click", resetCollectionForm);

$("collection-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("collection-error").textContent = "";
  const number = (id) => ($(id).value === "" ? null : Number($(id).value));
  const body = {
    description: $("collection-description").value,
    chunk_size: number("collection-chunk-size"),
    chunk_overlap: number("collection-chunk-overlap"),
  };
  try {
    if (editing) {
      await api("PATCH", `/collections/${encodeURIComponent(editing)}`, { json: body });
      flash(`Saved ${editing}.`);
    } else {
      const name = $("collection-name").value.trim();
      await api("POST", "/collections", { json: { name, ...body } });
      flash(`Created collection ${name}.`);
    }
    resetCollectionForm();
    await showCollections();
  } catch (error) {
    $("collection-error").textContent = describe(error);
  }
});

async function deleteCollection(name) {
  if (!confirm(`Delete collection ${name} and every document in it?`)) return;
  try {
    await api("DELETE", `/collections/${encodeURIComponent(name)}`);
    flash(`Deleted collection ${name}.`);
    await showCollections();
  } catch (error) {
    flash(`Could not delete ${name}: ${describe(error)}`);
  }
}

async function showKeys() {
  const keys = await api("GET", "/keys");
  $("keys-rows").replaceChildren(
    ...keys.map((k) =>
      el(
        "tr",
        {},
        el("th", { scope: "row", text: k.name }),
        el("td", { text: k.role }),
        el("td", { text: k.collections === "*" ? "*" : k.collections.join(", ") }),
        el("td", { text: when(k.created_at) }),
        el(
          "td",
          {},
          el("button", {
            type: "button",
            class: "danger",
            text: "Revoke",
            "aria-label": `Revoke key ${k.name}`,
            onclick: () => revokeKey(k),
          }),
        ),
      ),
    ),
  );
}

async function revokeKey(key) {
  if (!confirm(`Revoke key ${key.name}? It is refused from the next request on.`)) return;
  try {
    await api("DELETE", `/keys/${encodeURIComponent(key.id)}`);
    flash(`Revoked key ${key.name}.`);
    await showKeys();
  } catch (error) {
    flash(`Could not revoke ${key.name}: ${describe(error)}`);
  }
}

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("key-error").textContent = "";
  $("key-secret").hidden = true;
  const scope = $("key-collections").value.trim();
  const body = {
    name: $("key-name").value.trim(),
    role: $("key-role").value,
    collections: scope === "*" ? "*" : scope.split(",").map((s) => s.trim()).filter(Boolean),
  };
  try {
    const made = await api("POST", "/keys", { json: body });
    $("key-form").reset();
    $("key-secret-value").textContent = made.secret;
    $("key-secret").hidden = false;
    await showKeys();
  } catch (error) {
    $("key-error").textContent = describe(error);
  }
});

// Upload, with a live row per file over the SSE stream.

async function showUpload() {
  fillSelect($("upload-collection"), await collectionNames());
}

function chosenFiles(files) {
  $("upload-files").files = files;
  $("upload-chosen").textContent = `${files.length} file(s): ${[...files].map((f) => f.name).join(", ")}`;
}

$("upload-files").addEventListener("change", () => chosenFiles($("upload-files").files));
const drop = $("drop");
drop.addEventListener("dragover", (event) => {
  event.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  chosenFiles(event.dataTransfer.files);
});

$("upload-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("upload-error").textContent = "";
  const files = [...$("upload-files").files];
  const collection = $("upload-collection").value;
  let metadata;
  try {
    metadata = parseJson($("upload-metadata").value, "Metadata");
  } catch (error) {
    $("upload-error").textContent = describe(error);
    return;
  }
  if (!files.length) {
    $("upload-error").textContent = "Choose or drop at least one file.";
    return;
  }
  $("upload-form").reset();
  $("upload-collection").value = collection;
  $("upload-chosen").textContent = "";
  // One request per file: a file refused at the door (an unreadable type, an empty file)
  // says so on its own row, and the others go in.
  for (const file of files) {
    const row = uploadRow(file.name);
    const form = new FormData();
    form.append("file", file, file.name);
    if (metadata) form.append("metadata", JSON.stringify(metadata));
    for (const [field, id] of [["chunk_size", "upload-chunk-size"], ["chunk_overlap", "upload-chunk-overlap"]]) {
      if ($(id).value !== "") form.append(field, $(id).value);
    }
    try {
      const answer = await api("POST", `/collections/${encodeURIComponent(collection)}/documents`, { form });
      const doc = answer.documents[0];
      row.dataset.id = doc.id;
      row.querySelector(".file").replaceChildren(el("a", { href: `#/documents/${doc.id}`, text: file.name }));
      if (doc.duplicate) row.querySelector(".note").textContent = "duplicate: this content is already here";
      setRow(row, { status: doc.status, stages: {}, error: null });
      follow(doc.id, (report) => setRow(row, report));
    } catch (error) {
      setRow(row, { status: "rejected", stages: {}, error: null });
      row.querySelector(".detail").textContent = describe(error);
    }
  }
});

function uploadRow(name) {
  const row = el(
    "tr",
    { class: "upload" },
    el("th", { scope: "row", class: "file", text: name }),
    el("td", {}, el("span", { class: "status", text: "uploading" })),
    el("td", {}, el("span", { class: "detail" }), " ", el("span", { class: "note" })),
  );
  $("upload-rows").prepend(row);
  return row;
}

function runningStage(report) {
  const stages = Object.entries(report.stages || {});
  const running = stages.find(([, s]) => s.state === "in_progress");
  if (running) return running[0];
  const pending = stages.find(([, s]) => s.state === "pending");
  return pending ? pending[0] : "";
}

function setRow(row, report) {
  const status = row.querySelector(".status");
  status.textContent = report.status;
  status.className = `status ${report.status}`;
  row.dataset.status = report.status;
  const detail = row.querySelector(".detail");
  if (report.status === "processing") detail.textContent = runningStage(report);
  else if (report.error) {
    const e = report.error;
    detail.textContent = `${e.stage}: ${e.code}: ${e.message}`;
  } else if (report.status === "indexed") detail.textContent = `${report.chunks ?? 0} chunks`;
  else if (report.status === "queued") detail.textContent = "";
}

// Server-sent events need the key in a header, which EventSource cannot send: read the
// stream with fetch instead. Each `status` event is a DocumentOut; the stream closes at a
// terminal state.
async function follow(id, onStatus) {
  try {
    const response = await fetch(`/documents/${encodeURIComponent(id)}/events`, { headers: headers() });
    if (!response.ok || !response.body) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data) onStatus(JSON.parse(data));
      }
    }
  } catch (error) {
    flash(`Lost the live status of ${id}: ${error.message}`);
  }
}

// Documents: a page at a time, filtered on the server.

async function showDocuments() {
  const query = new URLSearchParams(location.hash.split("?")[1] || "");
  fillSelect($("documents-collection"), await collectionNames(), "all");
  if (query.has("collection")) {
    $("documents-collection").value = query.get("collection");
    docsOffset = 0;
  }
  await loadDocuments();
}

async function loadDocuments() {
  const params = new URLSearchParams({ limit: PAGE, offset: docsOffset });
  if ($("documents-status").value) params.set("status", $("documents-status").value);
  if ($("documents-collection").value) params.set("collection", $("documents-collection").value);
  const filter = $("documents-metadata").value.trim();
  if (filter) params.set("filter", filter);
  $("documents-error").textContent = "";
  let page;
  try {
    page = await api("GET", `/documents?${params}`);
  } catch (error) {
    $("documents-error").textContent = describe(error);
    return;
  }
  $("documents-rows").replaceChildren(
    ...page.items.map((d) =>
      el(
        "tr",
        {},
        el("th", { scope: "row" }, el("a", { href: `#/documents/${d.id}`, text: d.filename || d.id })),
        el("td", { text: d.collection }),
        el("td", {}, el("span", { class: `status ${d.status}`, text: d.status })),
        el("td", { text: d.chunks ?? "" }),
        el("td", { text: when(d.created_at) }),
      ),
    ),
  );
  const last = Math.min(page.offset + page.items.length, page.total);
  $("documents-range").textContent = page.total
    ? `${page.offset + 1}–${last} of ${page.total}`
    : "No documents";
  $("documents-prev").disabled = page.offset === 0;
  $("documents-next").disabled = last >= page.total;
}

$("documents-filter").addEventListener("submit", (event) => {
  event.preventDefault();
  docsOffset = 0;
  loadDocuments().catch((error) => flash(describe(error)));
});
$("documents-prev").addEventListener("click", () => {
  docsOffset = Math.max(0, docsOffset - PAGE);
  loadDocuments().catch((error) => flash(describe(error)));
});
$("documents-next").addEventListener("click", () => {
  docsOffset += PAGE;
  loadDocuments().catch((error) => flash(describe(error)));
});

// One document: its stages, runs and actions.

async function showDocument(id) {
  $("document-error").textContent = "";
  renderDocument(await api("GET", `/documents/${encodeURIComponent(id)}`));
  chunksOffset = 0;
  await loadChunks(id);
}

// A document's chunks as they were embedded, a page at a time (read-only).
let chunksOffset = 0;
const CHUNK_PAGE = 20;

async function loadChunks(id) {
  const params = new URLSearchParams({ limit: CHUNK_PAGE, offset: chunksOffset });
  const page = await api("GET", `/documents/${encodeURIComponent(id)}/chunks?${params}`);
  $("document-chunks").replaceChildren(
    ...page.items.map((c) => {
      const pages = c.page_end !== c.page ? `pages ${c.page}–${c.page_end}` : `page ${c.page}`;
      return el(
        "li",
        { value: c.chunk_no + 1 },
        el("p", { class: "meta", text: `Chunk ${c.chunk_no} · ${pages} · characters ${c.char_start}–${c.char_end} · ${c.tokens} tokens` }),
        el("p", { class: "chunk-text", text: c.text }),
      );
    }),
  );
  const last = Math.min(page.offset + page.items.length, page.total);
  $("document-chunks-range").textContent = page.total
    ? `Chunks ${page.offset + 1}–${last} of ${page.total}`
    : "No chunks yet.";
  $("document-chunks-prev").disabled = page.offset === 0;
  $("document-chunks-next").disabled = last >= page.total;
}

$("document-chunks-prev").addEventListener("click", () => {
  chunksOffset = Math.max(0, chunksOffset - CHUNK_PAGE);
  loadChunks($("view-document").dataset.id).catch((error) => flash(describe(error)));
});
$("document-chunks-next").addEventListener("click", () => {
  chunksOffset += CHUNK_PAGE;
  loadChunks($("view-document").dataset.id).catch((error) => flash(describe(error)));
});

function renderDocument(doc) {
  const view = $("view-document");
  view.dataset.id = doc.id;
  view.dataset.status = doc.status;
  view.dataset.collection = doc.collection;
  $("document-title").textContent = doc.filename || doc.id;
  const facts = [
    ["Status", doc.status],
    ["Collection", doc.collection],
    ["Id", doc.id],
    ["Chunks", doc.chunks ?? ""],
    ["Created", when(doc.created_at)],
    ["Indexed", when(doc.indexed_at)],
    ["Metadata", JSON.stringify(doc.metadata)],
  ];
  if (doc.error) facts.push(["Failure", `${doc.error.stage}: ${doc.error.code}: ${doc.error.message}`]);
  if (doc.superseded_by) facts.push(["Superseded by", doc.superseded_by]);
  $("document-facts").replaceChildren(
    ...facts.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: String(value) })]),
  );
  $("document-facts").querySelector("dd").className = `status ${doc.status}`;
  $("document-stages").replaceChildren(
    ...Object.entries(doc.stages).map(([name, stage]) =>
      el(
        "tr",
        {},
        el("th", { scope: "row", text: name }),
        el("td", { text: stage.state }),
        el("td", { text: when(stage.materialized_at || stage.failed_at) }),
        el("td", { class: "meta", text: Object.entries(stage.metadata || {}).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", ") }),
      ),
    ),
  );
  $("document-runs").replaceChildren(
    ...doc.run_ids.map((run) =>
      el("li", {}, el("a", { href: `${DAGSTER_UI}/runs/${run}`, text: `Run ${run.slice(0, 8)} in the Dagster UI` })),
    ),
  );
  $("document-retry").hidden = !(may("admin") && doc.status === "failed");
  const gone = doc.status === "deleted" || doc.status === "rejected";
  $("document-delete").hidden = !may("writer") || doc.status === "deleted";
  for (const id of ["document-new-version"]) {
    document.querySelector(`label[for=${id}]`).hidden = !may("writer") || gone;
  }
}

async function documentAction(run) {
  $("document-error").textContent = "";
  const id = $("view-document").dataset.id;
  try {
    await run(id);
  } catch (error) {
    $("document-error").textContent = describe(error);
  }
}

function watchDocument(id) {
  follow(id, (report) => {
    if ($("view-document").dataset.id !== id || $("view-document").hidden) return;
    renderDocument(report);
    if (report.status === "indexed") loadChunks(id).catch((error) => flash(describe(error)));
  });
}

$("document-reprocess").addEventListener("click", () =>
  documentAction(async (id) => {
    const rerun = await api("POST", `/documents/${encodeURIComponent(id)}/reprocess`);
    flash(`Reprocessing from ${rerun.first_stage}.`);
    watchDocument(id);
  }),
);
$("document-retry").addEventListener("click", () =>
  documentAction(async (id) => {
    const rerun = await api("POST", `/documents/${encodeURIComponent(id)}/retry`);
    flash(`Retrying from ${rerun.first_stage}.`);
    watchDocument(id);
  }),
);
$("document-delete").addEventListener("click", () =>
  documentAction(async (id) => {
    if (!confirm("Delete this document? Its chunks leave search at once.")) return;
    await api("DELETE", `/documents/${encodeURIComponent(id)}`);
    flash("Deleted.");
    await showDocument(id);
  }),
);
$("document-new-version").addEventListener("change", () =>
  documentAction(async (id) => {
    const file = $("document-new-version").files[0];
    if (!file) return;
    const form = new FormData();
    form.append("file", file, file.name);
    const answer = await api("PUT", `/documents/${encodeURIComponent(id)}`, { form });
    const doc = answer.documents[0];
    flash(doc.duplicate ? "Same content: nothing changed." : `New version ${doc.id} queued.`);
    if (!doc.duplicate) location.hash = `#/documents/${doc.id}`;
  }),
);

// Search.

async function showSearch() {
  fillSelect($("search-collection"), await collectionNames(), "all");
}

function highlighted(text, query) {
  const terms = [...new Set(query.toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) || [])];
  const passage = el("p", { class: "passage" });
  if (!terms.length) {
    passage.textContent = text;
    return passage;
  }
  const escaped = terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(${escaped.join("|")})`, "giu");
  for (const [i, part] of text.split(pattern).entries()) {
    passage.append(i % 2 ? el("mark", { text: part }) : part);
  }
  return passage;
}

$("search-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("search-error").textContent = "";
  $("search-note").textContent = "";
  const q = $("search-q").value;
  try {
    const body = { q, k: Number($("search-k").value || 5), mode: $("search-mode").value };
    const filter = parseJson($("search-filter").value, "The filter");
    if (filter) body.filter = filter;
    if ($("search-collection").value) body.collections = [$("search-collection").value];
    const answer = await api("POST", "/search", { json: body });
    $("search-note").textContent =
      `${answer.results.length} hit(s), ${answer.mode}` + (answer.degraded ? ` (${answer.degraded})` : "");
    $("search-hits").replaceChildren(
      ...answer.results.map((hit) =>
        el(
          "li",
          { class: "hit" },
          el(
            "p",
            { class: "cite" },
            el("a", { href: `#/documents/${hit.document_id}`, text: hit.filename }),
            ` · page ${hit.page} · ${hit.collection} · score ${hit.score.toFixed(3)}`,
          ),
          highlighted(hit.text, q),
        ),
      ),
    );
  } catch (error) {
    $("search-error").textContent = describe(error);
  }
});

// Schedules and sensors.

async function showSchedules() {
  const all = await api("GET", "/schedules");
  $("schedules-rows").replaceChildren(
    ...all.map((s) => {
      const row = el(
        "tr",
        {},
        el("th", { scope: "row", text: s.name }),
        el("td", { text: s.kind === "schedule" ? `schedule (${s.cron} ${s.timezone})` : `sensor (every ${s.interval_seconds} s)` }),
        el("td", { text: s.status }),
        el("td", { text: when(s.next_tick_at) }),
        el("td", { text: when(s.last_tick_at) }),
      );
      if (may("admin")) {
        const actions = el("td");
        if (s.kind === "schedule") {
          const running = s.status === "running";
          actions.append(
            el("button", {
              type: "button",
              text: running ? "Stop" : "Start",
              "aria-label": `${running ? "Stop" : "Start"} ${s.name}`,
              onclick: () => scheduleAction(s.name, "PATCH", { running: !running }),
            }),
            " ",
            el("button", {
              type: "button",
              text: "Run now",
              "aria-label": `Run ${s.name} now`,
              onclick: () => scheduleAction(s.name, "POST"),
            }),
          );
        }
        row.append(actions);
      }
      return row;
    }),
  );
}

async function scheduleAction(name, method, json) {
  try {
    const path = `/schedules/${encodeURIComponent(name)}${method === "POST" ? "/run" : ""}`;
    const answer = await api(method, path, json ? { json } : {});
    flash(method === "POST" ? `Started run ${answer.run_id} of ${answer.job}.` : `${name} is ${answer.status}.`);
    await showSchedules();
  } catch (error) {
    flash(`Could not change ${name}: ${describe(error)}`);
  }
}

route();
