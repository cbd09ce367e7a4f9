// The explorer and playground of aisearch-local (docs/explorer.md).
//
// Plain JavaScript, no build step, no dependency. It talks to the server through the same REST
// routes the client uses, from the same origin. Security rules of this file:
// - every string that comes from the server (chunk text, keys, metadata, messages) is put in
//   the page with textContent or as an attribute value of an element we create, never as HTML
//   (no innerHTML, no insertAdjacentHTML, no eval: the Content-Security-Policy forbids it too);
// - no URL is built from server data but our own, encoded, API paths;
// - the token, when the server needs one, lives in this tab's sessionStorage only.
"use strict";

(() => {
  const ACCOUNT = "local-account"; // any account id is accepted by aisearch-local
  const API = `/client/v4/accounts/${ACCOUNT}/ai-search`;
  const LOCAL = "/client/v4/_local";
  const TOKEN_KEY = "aisearch-local-token";

  const $ = (id) => document.getElementById(id);

  // -- DOM helpers: text only --------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    node.replaceChildren();
    return node;
  }

  function show(node, on) {
    node.hidden = !on;
  }

  function fmtValue(value) {
    if (value === null || value === undefined) return "";
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function fmtBytes(n) {
    if (typeof n !== "number") return "";
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
    return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  }

  function setError(id, err) {
    const node = $(id);
    node.textContent = err ? describe(err) : "";
  }

  function describe(err) {
    if (err instanceof ApiError) {
      const code = err.code === undefined ? "" : ` · ${err.code}`;
      return `HTTP ${err.status}${code}: ${err.message}`;
    }
    return err && err.message ? err.message : String(err);
  }

  // -- the REST API ------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function headers(extra) {
    const out = Object.assign({}, extra);
    const t = token();
    if (t) out.Authorization = `Bearer ${t}`;
    return out;
  }

  function isAuthError(err) {
    return (
      err instanceof ApiError &&
      (err.status === 401 ||
        (err.status === 400 && err.code === 6003) || // a malformed token
        (err.status === 403 && err.code === 10000 && /^Auth/.test(err.message)))
    );
  }

  async function errorOf(response) {
    let doc = null;
    try {
      doc = await response.json();
    } catch (_) {
      return new ApiError(response.status, undefined, `${response.statusText || "error"} (not JSON)`);
    }
    const first = doc && Array.isArray(doc.errors) && doc.errors[0];
    if (first && typeof first.message === "string") {
      return new ApiError(response.status, first.code, first.message);
    }
    const err = doc && doc.error;
    const msg = err && typeof err.message === "string" ? err.message : JSON.stringify(doc);
    return new ApiError(response.status, undefined, msg);
  }

  async function send(method, path, body) {
    const init = { method, headers: headers(), cache: "no-store", credentials: "omit" };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    if (!response.ok) {
      const err = await errorOf(response);
      if (isAuthError(err)) askToken(err);
      throw err;
    }
    return response;
  }

  async function api(method, path, body) {
    const response = await send(method, path, body);
    let doc;
    try {
      doc = await response.json();
    } catch (_) {
      throw new ApiError(response.status, undefined, "the answer is not valid JSON");
    }
    if (!doc || doc.success !== true) {
      const first = doc && Array.isArray(doc.errors) && doc.errors[0];
      throw new ApiError(response.status, first && first.code, first ? first.message : "failed");
    }
    return doc;
  }

  async function allPages(path, perPage) {
    const out = [];
    for (let page = 1; page <= 100; page++) {
      const sep = path.includes("?") ? "&" : "?";
      const doc = await api("GET", `${path}${sep}page=${page}&per_page=${perPage}`);
      out.push(...(doc.result || []));
      const info = doc.result_info || {};
      if (!info.total_pages || page >= info.total_pages) break;
    }
    return out;
  }

  const enc = encodeURIComponent;

  function instancePath(ns, id) {
    return `${API}/namespaces/${enc(ns)}/instances/${enc(id)}`;
  }

  // -- the token ---------------------------------------------------------------------------

  function askToken(err) {
    show($("layout"), false);
    show($("token-panel"), true);
    show($("forget-token"), false);
    $("token-error").textContent = token() ? `That token was refused (${describe(err)}).` : "";
    $("token-input").focus();
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token-input").value.trim();
    $("token-input").value = "";
    if (!value) return;
    sessionStorage.setItem(TOKEN_KEY, value);
    start();
  });

  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });

  // -- state and navigation ----------------------------------------------------------------

  const state = { ns: null, id: null, instance: null, tab: "overview", itemsPage: 1 };

  function setHash() {
    const parts = ["#", enc(state.ns || "")];
    if (state.id) parts.push(enc(state.id), state.tab);
    history.replaceState(null, "", parts.join("/"));
  }

  function readHash() {
    const parts = location.hash.replace(/^#\/?/, "").split("/").map((p) => {
      try {
        return decodeURIComponent(p);
      } catch (_) {
        return "";
      }
    });
    return { ns: parts[0] || null, id: parts[1] || null, tab: parts[2] || "overview" };
  }

  async function loadTree() {
    setError("tree-error", null);
    const tree = clear($("tree"));
    const namespaces = await allPages(`${API}/namespaces`, 50);
    for (const ns of namespaces) {
      const name = String(ns.name);
      const list = el("ul");
      tree.append(
        el(
          "li",
          { class: "ns" },
          el("button", { type: "button", class: "link ns-link", "data-ns": name, onclick: () => openNamespace(name) }, name),
          list,
        ),
      );
      try {
        const instances = await allPages(`${API}/namespaces/${enc(name)}/instances`, 50);
        for (const inst of instances) {
          const id = String(inst.id);
          list.append(
            el(
              "li",
              {},
              el(
                "button",
                {
                  type: "button",
                  class: "link instance-link",
                  "data-ns": name,
                  "data-instance": id,
                  onclick: () => openInstance(name, id, "overview"),
                },
                id,
              ),
            ),
          );
        }
        if (!instances.length) list.append(el("li", { class: "muted", text: "no instance" }));
      } catch (err) {
        list.append(el("li", { class: "error", text: describe(err) }));
      }
    }
    markSelected();
  }

  function markSelected() {
    for (const b of document.querySelectorAll("#tree button")) {
      const on = b.dataset.instance
        ? b.dataset.ns === state.ns && b.dataset.instance === state.id
        : b.dataset.ns === state.ns && !state.id;
      b.classList.toggle("selected", on);
      if (on) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    }
  }

  function showView(name) {
    show($("welcome"), name === "welcome");
    show($("namespace-view"), name === "namespace");
    show($("instance-view"), name === "instance");
  }

  async function openNamespace(ns) {
    Object.assign(state, { ns, id: null, instance: null });
    setHash();
    markSelected();
    showView("namespace");
    $("namespace-title").textContent = `Namespace ${ns}`;
    setError("namespace-error", null);
    const body = clear($("namespace-instances").tBodies[0]);
    try {
      const doc = await api("GET", `${API}/namespaces/${enc(ns)}`);
      $("namespace-description").textContent = fmtValue(doc.result && doc.result.description);
      const instances = await allPages(`${API}/namespaces/${enc(ns)}/instances`, 50);
      for (const inst of instances) {
        const id = String(inst.id);
        let stats = {};
        try {
          stats = (await api("GET", `${instancePath(ns, id)}/stats`)).result || {};
        } catch (_) {
          stats = {};
        }
        const vectors = stats.engine && stats.engine.vectorize && stats.engine.vectorize.vectorsCount;
        body.append(
          el(
            "tr",
            { onclick: () => openInstance(ns, id, "overview") },
            el("td", {}, el("button", { type: "button", class: "link" }, id)),
            el("td", { text: fmtValue(inst.status) }),
            el("td", { text: fmtValue(stats.completed) }),
            el("td", { text: fmtValue(stats.error) }),
            el("td", { text: fmtValue(stats.queued) }),
            el("td", { text: fmtValue(vectors) }),
            el("td", { text: fmtValue(stats.last_activity) }),
          ),
        );
      }
    } catch (err) {
      setError("namespace-error", err);
    }
  }

  $("instance-create").addEventListener("submit", async (event) => {
    event.preventDefault();
    setError("namespace-error", null);
    const id = $("new-instance-id").value.trim();
    try {
      await api("POST", `${API}/namespaces/${enc(state.ns)}/instances`, { id });
      $("new-instance-id").value = "";
      await loadTree();
      await openInstance(state.ns, id, "items");
    } catch (err) {
      setError("namespace-error", err);
    }
  });

  async function openInstance(ns, id, tab) {
    const changed = ns !== state.ns || id !== state.id;
    Object.assign(state, { ns, id });
    if (changed) {
      state.itemsPage = 1;
      state.instance = null;
      resetInstanceViews();
    }
    markSelected();
    showView("instance");
    $("instance-title").textContent = ns === "default" ? id : `${ns} / ${id}`;
    try {
      const doc = await api("GET", instancePath(ns, id));
      state.instance = doc.result || {};
      const status = fmtValue(state.instance.status) || "unknown";
      $("instance-status").textContent = status;
      $("instance-status").dataset.status = status;
      buildOptions("search-options", "search");
      buildOptions("chat-options", "chat");
    } catch (err) {
      setError("overview-error", err);
    }
    openTab(tab || "overview");
  }

  function resetInstanceViews() {
    for (const id of ["search-results", "item-chunks", "item-fields", "job-logs", "chat-log", "stats"]) {
      clear($(id));
    }
    for (const id of ["item-detail", "job-detail"]) show($(id), false);
    for (const id of ["search-status", "search-request", "fault-result", "upload-result", "config"]) {
      $(id).textContent = "";
    }
    for (const node of document.querySelectorAll(".error")) node.textContent = "";
    chat.messages = [];
  }

  const TABS = ["overview", "items", "jobs", "search", "chat", "faults"];

  function openTab(tab) {
    if (!TABS.includes(tab)) tab = "overview";
    state.tab = tab;
    setHash();
    for (const b of document.querySelectorAll("#tabs button")) {
      b.setAttribute("aria-selected", String(b.dataset.tab === tab));
    }
    for (const t of TABS) show($(`tab-${t}`), t === tab);
    if (tab === "overview") loadOverview();
    else if (tab === "items") loadItems();
    else if (tab === "jobs") loadJobs();
    else if (tab === "faults") loadFault();
  }

  for (const b of document.querySelectorAll("#tabs button")) {
    b.addEventListener("click", () => openTab(b.dataset.tab));
  }

  // -- overview ----------------------------------------------------------------------------

  async function loadOverview() {
    setError("overview-error", null);
    const stats = clear($("stats"));
    $("config").textContent = state.instance ? JSON.stringify(state.instance, null, 2) : "";
    try {
      const s = (await api("GET", `${instancePath(state.ns, state.id)}/stats`)).result || {};
      const engine = s.engine || {};
      const cards = [
        ["completed", s.completed],
        ["queued", s.queued],
        ["running", s.running],
        ["errors", s.error],
        ["skipped", s.skipped],
        ["outdated", s.outdated],
        ["vectors", engine.vectorize && engine.vectorize.vectorsCount],
        ["dimensions", engine.vectorize && engine.vectorize.dimensions],
        ["stored bytes", engine.r2 && fmtBytes(engine.r2.payloadSizeBytes)],
        ["last activity", s.last_activity],
      ];
      for (const [label, value] of cards) {
        stats.append(
          el("div", { class: "stat", "data-stat": label }, el("div", { class: "stat-value", text: fmtValue(value) }), el("div", { class: "stat-label", text: label })),
        );
      }
      if (s.degraded) stats.append(el("p", { class: "error", text: "degraded" }));
    } catch (err) {
      setError("overview-error", err);
    }
  }

  // -- items -------------------------------------------------------------------------------

  async function loadItems() {
    setError("items-error", null);
    const body = clear($("items-table").tBodies[0]);
    const params = new URLSearchParams({ page: String(state.itemsPage), per_page: "20" });
    const search = $("items-search").value.trim();
    const status = $("items-status").value;
    if (search) params.set("search", search);
    if (status) params.set("status", status);
    try {
      const doc = await api("GET", `${instancePath(state.ns, state.id)}/items?${params}`);
      const info = doc.result_info || {};
      const pages = Math.max(1, info.total_pages || 1);
      $("items-page").textContent = `page ${info.page || 1} of ${pages} · ${info.total_count || 0} items`;
      $("items-prev").disabled = state.itemsPage <= 1;
      $("items-next").disabled = state.itemsPage >= pages;
      for (const item of doc.result || []) {
        body.append(
          el(
            "tr",
            { "data-key": String(item.key), onclick: () => openItem(String(item.id)) },
            el("td", {}, el("button", { type: "button", class: "link" }, fmtValue(item.key))),
            el("td", {}, el("span", { class: "badge", "data-status": String(item.status), text: fmtValue(item.status) })),
            el("td", { text: fmtValue(item.chunks_count) }),
            el("td", { text: fmtBytes(item.file_size) }),
            el("td", { class: "item-error", text: fmtValue(item.error) }),
          ),
        );
      }
    } catch (err) {
      setError("items-error", err);
    }
  }

  $("items-filter").addEventListener("submit", (event) => {
    event.preventDefault();
    state.itemsPage = 1;
    loadItems();
  });
  $("items-prev").addEventListener("click", () => {
    state.itemsPage = Math.max(1, state.itemsPage - 1);
    loadItems();
  });
  $("items-next").addEventListener("click", () => {
    state.itemsPage += 1;
    loadItems();
  });

  async function openItem(itemId) {
    state.itemId = itemId;
    setError("item-error", null);
    const detail = $("item-detail");
    show(detail, true);
    const fields = clear($("item-fields"));
    const chunks = clear($("item-chunks"));
    const path = `${instancePath(state.ns, state.id)}/items/${enc(itemId)}`;
    try {
      const item = (await api("GET", path)).result || {};
      $("item-title").textContent = fmtValue(item.key);
      for (const [name, value] of Object.entries(item)) {
        if (name === "key") continue;
        const shown = name === "metadata" ? metadataList(item) || "" : fmtValue(value);
        fields.append(el("dt", { text: name }), el("dd", { class: name === "error" ? "error" : undefined }, shown));
      }
      const found = (await api("GET", `${path}/chunks?limit=100`)).result || [];
      for (const chunk of found) {
        chunks.append(
          el(
            "li",
            {},
            el("div", { class: "muted", text: `${fmtValue(chunk.id)} · bytes ${fmtValue(chunk.start_byte)}-${fmtValue(chunk.end_byte)}` }),
            el("pre", { class: "chunk-text", text: fmtValue(chunk.text) }),
          ),
        );
      }
      if (!found.length) chunks.append(el("li", { class: "muted", text: "no chunk" }));
    } catch (err) {
      setError("item-error", err);
    }
  }

  $("item-reindex").addEventListener("click", async () => {
    try {
      await api("PATCH", `${instancePath(state.ns, state.id)}/items/${enc(state.itemId)}`, { next_action: "INDEX" });
      await openItem(state.itemId);
      await loadItems();
    } catch (err) {
      setError("item-error", err);
    }
  });

  $("item-delete").addEventListener("click", async () => {
    if (!window.confirm(`Delete ${$("item-title").textContent} and its chunks?`)) return;
    try {
      await api("DELETE", `${instancePath(state.ns, state.id)}/items/${enc(state.itemId)}`);
      show($("item-detail"), false);
      await loadItems();
    } catch (err) {
      setError("item-error", err);
    }
  });

  $("upload-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setError("upload-error", null);
    $("upload-result").textContent = "";
    const input = $("upload-file");
    const metadata = $("upload-metadata").value.trim();
    const done = [];
    let last = null;
    for (const file of input.files) {
      const form = new FormData();
      form.append("file", file, file.name);
      if (metadata) form.append("metadata", metadata);
      try {
        const item = (await api("POST", `${instancePath(state.ns, state.id)}/items`, form)).result || {};
        last = item;
        const warn = Array.isArray(item.warnings) && item.warnings.length ? ` (${item.warnings.join("; ")})` : "";
        const outcome = item.error ? `${fmtValue(item.status)} (${fmtValue(item.error)})` : `${fmtValue(item.status)}, ${fmtValue(item.chunks_count)} chunks`;
        done.push(`${fmtValue(item.key)}: ${outcome}${warn}`);
      } catch (err) {
        setError("upload-error", new Error(`${file.name}: ${describe(err)}`));
        break;
      }
    }
    $("upload-result").textContent = done.length ? `Uploaded ${done.join(" · ")}` : "";
    if (last) {
      input.value = "";
      $("items-search").value = "";
      $("items-status").value = "";
      state.itemsPage = 1;
      await loadItems();
      if (last.id) await openItem(String(last.id));
    }
  });

  // -- jobs --------------------------------------------------------------------------------

  async function loadJobs() {
    setError("jobs-error", null);
    const body = clear($("jobs-table").tBodies[0]);
    try {
      const jobs = await allPages(`${instancePath(state.ns, state.id)}/jobs`, 100);
      for (const job of jobs) {
        body.append(
          el(
            "tr",
            { onclick: () => openJob(String(job.id)) },
            el("td", {}, el("button", { type: "button", class: "link" }, fmtValue(job.id))),
            el("td", { text: fmtValue(job.source) }),
            el("td", { text: fmtValue(job.started_at) }),
            el("td", { text: fmtValue(job.ended_at) }),
            el("td", { text: fmtValue(job.end_reason) }),
          ),
        );
      }
      if (!jobs.length) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted", text: "no job yet" })));
    } catch (err) {
      setError("jobs-error", err);
    }
  }

  async function openJob(jobId) {
    const detail = $("job-detail");
    show(detail, true);
    $("job-title").textContent = `Job ${jobId}`;
    const logs = clear($("job-logs"));
    try {
      const lines = await allPages(`${instancePath(state.ns, state.id)}/jobs/${enc(jobId)}/logs`, 100);
      for (const line of lines) {
        logs.append(el("li", { class: line.message_type === 2 ? "error" : undefined, text: fmtValue(line.message) }));
      }
      if (!lines.length) logs.append(el("li", { class: "muted", text: "no log line" }));
    } catch (err) {
      setError("jobs-error", err);
    }
  }

  $("job-start").addEventListener("click", async () => {
    setError("jobs-error", null);
    try {
      const job = (await api("POST", `${instancePath(state.ns, state.id)}/jobs`)).result || {};
      await loadJobs();
      if (job.id) await openJob(String(job.id));
    } catch (err) {
      setError("jobs-error", err);
    }
  });

  // -- search options: one form control per option (API.md section 9) ----------------------

  const OPTIONS = [
    { path: "retrieval.retrieval_type", label: "Retrieval type", kind: "select", values: ["vector", "keyword", "hybrid"] },
    { path: "retrieval.fusion_method", label: "Fusion", kind: "select", values: ["rrf", "max"] },
    { path: "retrieval.keyword_match_mode", label: "Keyword match", kind: "select", values: ["and", "or"] },
    { path: "retrieval.match_threshold", label: "Match threshold", kind: "number", min: 0, max: 1, step: 0.01 },
    { path: "retrieval.max_num_results", label: "Max results", kind: "integer", min: 1, max: 50 },
    { path: "retrieval.context_expansion", label: "Context expansion", kind: "integer", min: 0, max: 3 },
    { path: "retrieval.metadata_only", label: "Metadata only", kind: "bool" },
    { path: "retrieval.return_on_failure", label: "Return on failure", kind: "bool" },
    { path: "retrieval.filters", label: "Filters (JSON)", kind: "json", wide: true, placeholder: '{"difficulty": "beginner", "rating": {"$gte": 4}}' },
    { path: "retrieval.boost_by", label: "Boost by", kind: "boost", wide: true },
    { path: "reranking.enabled", label: "Reranking", kind: "bool" },
    { path: "reranking.match_threshold", label: "Reranking threshold", kind: "number", min: 0, max: 1, step: 0.01 },
    { path: "reranking.model", label: "Reranking model", kind: "text" },
    { path: "query_rewrite.enabled", label: "Query rewrite", kind: "bool" },
    { path: "query_rewrite.model", label: "Rewrite model", kind: "text" },
    { path: "query_rewrite.rewrite_prompt", label: "Rewrite prompt", kind: "text" },
    { path: "cache.enabled", label: "Cache", kind: "bool" },
    { path: "cache.cache_threshold", label: "Cache threshold", kind: "select", values: ["super_strict_match", "close_enough", "flexible_friend", "anything_goes"] },
    { path: "custom_metadata", label: "Custom metadata (JSON)", kind: "json", placeholder: '{"team": "docs"}' },
  ];
  const BOOST_DIRECTIONS = ["asc", "desc", "exists", "not_exists"];

  function metadataFields() {
    const declared = (state.instance && state.instance.custom_metadata) || [];
    return ["timestamp", ...declared.map((f) => f && f.field_name).filter((n) => typeof n === "string")];
  }

  function buildOptions(containerId, prefix) {
    const box = clear($(containerId));
    const listId = `${prefix}-fields`;
    box.append(el("datalist", { id: listId }, metadataFields().map((n) => el("option", { value: n }))));
    for (const spec of OPTIONS) {
      const id = `${prefix}-${spec.path.replace(/[._]/g, "-")}`;
      let control;
      if (spec.kind === "select" || spec.kind === "bool") {
        const values = spec.kind === "bool" ? ["true", "false"] : spec.values;
        control = el("select", { id, "data-option": spec.path }, el("option", { value: "", text: "default" }), values.map((v) => el("option", { value: v, text: v })));
      } else if (spec.kind === "number" || spec.kind === "integer") {
        control = el("input", { id, type: "number", min: spec.min, max: spec.max, step: spec.step || 1, placeholder: "default", "data-option": spec.path });
      } else if (spec.kind === "json" || spec.kind === "text") {
        control = el("input", { id, type: "text", placeholder: spec.placeholder || "default", "data-option": spec.path, spellcheck: "false" });
      } else {
        control = el(
          "div",
          { class: "boost", id },
          [0, 1, 2].map((i) =>
            el(
              "span",
              { class: "boost-row" },
              el("input", { type: "text", list: listId, placeholder: "field", "aria-label": `Boost ${i + 1} field`, "data-boost-field": String(i) }),
              el(
                "select",
                { "aria-label": `Boost ${i + 1} direction`, "data-boost-direction": String(i) },
                el("option", { value: "", text: "default" }),
                BOOST_DIRECTIONS.map((d) => el("option", { value: d, text: d })),
              ),
            ),
          ),
        );
        box.append(el("div", { class: "wide field" }, el("span", { class: "label", text: spec.label }), control));
        continue;
      }
      box.append(el("div", { class: spec.wide ? "wide field" : "field" }, el("label", { class: "label", for: id, text: spec.label }), control));
    }
  }

  function setPath(target, path, value) {
    const keys = path.split(".");
    let node = target;
    for (const key of keys.slice(0, -1)) node = node[key] = node[key] || {};
    node[keys[keys.length - 1]] = value;
  }

  // The ai_search_options of a form: only the controls a user set (the rest keep the
  // instance's defaults). Throws naming the option when a JSON field does not parse.
  function readOptions(containerId) {
    const box = $(containerId);
    const out = {};
    for (const spec of OPTIONS) {
      if (spec.kind === "boost") {
        const rows = [];
        for (const i of [0, 1, 2]) {
          const field = box.querySelector(`[data-boost-field="${i}"]`).value.trim();
          const direction = box.querySelector(`[data-boost-direction="${i}"]`).value;
          if (field) rows.push(direction ? { field, direction } : { field });
        }
        if (rows.length) setPath(out, spec.path, rows);
        continue;
      }
      const control = box.querySelector(`[data-option="${spec.path}"]`);
      const raw = control.value.trim();
      if (!raw) continue;
      let value = raw;
      if (spec.kind === "bool") value = raw === "true";
      else if (spec.kind === "number" || spec.kind === "integer") value = Number(raw);
      else if (spec.kind === "json") {
        try {
          value = JSON.parse(raw);
        } catch (err) {
          throw new Error(`${spec.label}: not valid JSON (${err.message})`);
        }
      }
      setPath(out, spec.path, value);
    }
    return out;
  }

  // -- search playground -------------------------------------------------------------------

  const COMPONENTS = [
    ["vector", "vector_score", "vector_rank"],
    ["keyword", "keyword_score", "keyword_rank"],
    ["reranking", "reranking_score", null],
  ];

  function bar(component, label, value, scale) {
    const fraction = Math.max(0, Math.min(1, scale > 0 ? value / scale : 0));
    const fill = el("span", { class: "fill" });
    fill.style.width = `${(fraction * 100).toFixed(1)}%`; // CSSOM: allowed by the CSP
    return el(
      "div",
      { class: "bar-row", "data-component": component },
      el("span", { class: "bar-label", text: label }),
      el("span", { class: "bar", role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": scale, "aria-valuenow": value }, fill),
      el("span", { class: "bar-value", text: Number(value).toFixed(3) }),
    );
  }

  function scoringBars(chunk, keywordScale) {
    const details = chunk.scoring_details && typeof chunk.scoring_details === "object" ? chunk.scoring_details : {};
    const rows = [];
    for (const [component, key, rankKey] of COMPONENTS) {
      const value = details[key];
      if (typeof value !== "number") continue;
      const rank = rankKey && typeof details[rankKey] === "number" ? ` #${details[rankKey]}` : "";
      const scale = component === "keyword" ? keywordScale : 1;
      const label = component === "keyword" ? `keyword (BM25)${rank}` : `${component}${rank}`;
      rows.push(bar(component, label, value, scale));
    }
    if (typeof chunk.score === "number") {
      const fusion = typeof details.fusion_method === "string" ? details.fusion_method : null;
      const reranked = typeof details.reranking_score === "number";
      const component = fusion && !reranked ? "fusion" : "score";
      const label = fusion && !reranked ? `fusion (${fusion})` : "score";
      rows.push(bar(component, label, chunk.score, 1));
    }
    return el("div", { class: "bars" }, rows);
  }

  function metadataList(item) {
    const meta = item && item.metadata && typeof item.metadata === "object" ? item.metadata : {};
    const entries = Object.entries(meta);
    if (!entries.length) return null;
    return el("dl", { class: "meta" }, entries.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: fmtValue(v) })]));
  }

  function renderResult(chunk, index, keywordScale) {
    const item = chunk.item && typeof chunk.item === "object" ? chunk.item : {};
    return el(
      "li",
      { class: "result" },
      el(
        "div",
        { class: "result-head" },
        el("span", { class: "rank", text: `[${index + 1}]` }),
        el("strong", { class: "source", text: fmtValue(item.key) }),
        el("span", { class: "muted", text: `score ${typeof chunk.score === "number" ? chunk.score.toFixed(3) : "?"} · ${fmtValue(chunk.id)}` }),
      ),
      scoringBars(chunk, keywordScale),
      el("pre", { class: "chunk-text", text: fmtValue(chunk.text) }),
      metadataList(item),
    );
  }

  // A chat source: one line (rank, file, score), its scores and text folded below.
  function renderSource(chunk, index, keywordScale, idPrefix) {
    const item = chunk.item && typeof chunk.item === "object" ? chunk.item : {};
    return el(
      "li",
      { class: "result source", id: `${idPrefix}${index + 1}` },
      el(
        "details",
        {},
        el(
          "summary",
          { class: "result-head" },
          el("span", { class: "rank", text: `[${index + 1}]` }),
          el("strong", { class: "source-key", text: fmtValue(item.key) }),
          el("span", { class: "muted", text: `score ${typeof chunk.score === "number" ? chunk.score.toFixed(3) : "?"}` }),
        ),
        scoringBars(chunk, keywordScale),
        el("pre", { class: "chunk-text", text: fmtValue(chunk.text) }),
        metadataList(item),
      ),
    );
  }

  function keywordScaleOf(chunks) {
    let max = 1;
    for (const c of chunks) {
      const v = c.scoring_details && c.scoring_details.keyword_score;
      if (typeof v === "number" && v > max) max = v;
    }
    return max;
  }

  function partialErrors(errors) {
    if (!Array.isArray(errors) || !errors.length) return "";
    return errors.map((e) => `${fmtValue(e.instance_id)}: ${fmtValue(e.message)}`).join("; ");
  }

  $("search-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setError("search-error", null);
    const results = clear($("search-results"));
    $("search-status").textContent = "";
    let body;
    try {
      body = { query: $("search-query").value };
      const options = readOptions("search-options");
      if (Object.keys(options).length) body.ai_search_options = options;
    } catch (err) {
      setError("search-error", err);
      return;
    }
    const path = `${instancePath(state.ns, state.id)}/search`;
    $("search-request").textContent = `POST ${path}\n${JSON.stringify(body, null, 2)}`;
    const started = performance.now();
    try {
      const result = (await api("POST", path, body)).result || {};
      const chunks = Array.isArray(result.chunks) ? result.chunks : [];
      const ms = Math.round(performance.now() - started);
      const query = result.search_query && result.search_query !== body.query ? ` for "${result.search_query}"` : "";
      $("search-status").textContent = `${chunks.length} result${chunks.length === 1 ? "" : "s"}${query} in ${ms} ms`;
      const problems = partialErrors(result.errors);
      if (problems) setError("search-error", new Error(problems));
      const scale = keywordScaleOf(chunks);
      chunks.forEach((chunk, i) => results.append(renderResult(chunk, i, scale)));
    } catch (err) {
      setError("search-error", err);
    }
  });

  // -- chat playground: Server-Sent Events over fetch ---------------------------------------

  const chat = { messages: [], turn: 0 };

  async function* events(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (value) buffer += decoder.decode(value, { stream: true });
      buffer = buffer.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let v = colon < 0 ? "" : line.slice(colon + 1);
          if (v.startsWith(" ")) v = v.slice(1);
          if (field === "event") event = v;
          else if (field === "data") data.push(v);
        }
        if (data.length) yield { event, data: data.join("\n") };
      }
      if (done) return;
    }
  }

  // A citation's click: unfold its source and show it (the address keeps the explorer's state).
  function openSource(event, id) {
    event.preventDefault();
    const source = $(id);
    if (!source) return;
    for (const other of document.querySelectorAll(".source.cited")) other.classList.remove("cited");
    source.classList.add("cited");
    const details = source.querySelector("details");
    if (details) details.open = true;
    source.scrollIntoView({ block: "nearest" });
  }

  // The answer's text with each [n] citing a source turned into a link to that source.
  function renderCited(node, text, prefix, count) {
    const parts = [];
    const re = /\[(\d{1,6})\]/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      const n = Number(m[1]);
      if (n < 1 || n > count) continue;
      parts.push(text.slice(last, m.index));
      parts.push(el("a", { class: "cite", href: `#${prefix}${n}`, "data-cite": String(n), text: `[${n}]`, onclick: (e) => openSource(e, `${prefix}${n}`) }));
      last = m.index + m[0].length;
    }
    parts.push(text.slice(last));
    node.replaceChildren(...parts);
  }

  $("chat-reset").addEventListener("click", () => {
    chat.messages = [];
    clear($("chat-log"));
    setError("chat-error", null);
  });

  $("chat-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setError("chat-error", null);
    const text = $("chat-message").value.trim();
    if (!text) return;
    let body;
    try {
      const options = readOptions("chat-options");
      const system = $("chat-system").value.trim();
      const messages = [...chat.messages, { role: "user", content: text }];
      body = { messages: system ? [{ role: "system", content: system }, ...messages] : messages, stream: true };
      const model = $("chat-model").value.trim();
      const maxTokens = $("chat-max-tokens").value.trim();
      if (model) body.model = model;
      if (maxTokens) body.max_tokens = Number(maxTokens);
      if (Object.keys(options).length) body.ai_search_options = options;
    } catch (err) {
      setError("chat-error", err);
      return;
    }
    chat.turn += 1;
    const prefix = `chat-${chat.turn}-src-`;
    const log = $("chat-log");
    const status = el("p", { class: "muted chat-status", role: "status", text: "retrieving…" });
    const sources = el("ol", { class: "results sources" });
    const answer = el("div", { class: "answer" });
    const turn = el(
      "div",
      { class: "turn" },
      el("div", { class: "user-message", text: text }),
      el("div", { class: "assistant" }, status, sources, answer),
    );
    log.append(turn);
    turn.scrollIntoView({ block: "end" });
    $("chat-message").value = "";
    let count = 0;
    let content = "";
    let finished = false;
    try {
      const response = await send("POST", `${instancePath(state.ns, state.id)}/chat/completions`, body);
      const streamed = (response.headers.get("content-type") || "").startsWith("text/event-stream");
      if (!streamed) throw new Error("the server did not stream the answer");
      for await (const ev of events(response)) {
        if (ev.event === "chunks") {
          const chunks = JSON.parse(ev.data);
          const list = Array.isArray(chunks) ? chunks : [];
          count = list.length;
          const scale = keywordScaleOf(list);
          list.forEach((chunk, i) => sources.append(renderSource(chunk, i, scale, prefix)));
          status.textContent = `${count} source${count === 1 ? "" : "s"} · answering…`;
        } else if (ev.event === "errors") {
          setError("chat-error", new Error(partialErrors(JSON.parse(ev.data))));
        } else if (ev.data === "[DONE]") {
          finished = true;
        } else {
          const doc = JSON.parse(ev.data);
          const choice = doc && Array.isArray(doc.choices) ? doc.choices[0] : null;
          const piece = choice && choice.delta && typeof choice.delta.content === "string" ? choice.delta.content : "";
          if (piece) {
            content += piece;
            renderCited(answer, content, prefix, count);
          }
          if (choice && choice.finish_reason) status.textContent = `${count} sources · ${choice.finish_reason}`;
          if (doc && doc.error) throw new Error(fmtValue(doc.error.message || doc.error));
        }
      }
      if (!finished) status.textContent += " · the stream ended without [DONE]";
      else status.textContent = `${count} source${count === 1 ? "" : "s"} · done`;
      chat.messages.push({ role: "user", content: text }, { role: "assistant", content });
    } catch (err) {
      status.textContent = "failed";
      setError("chat-error", err);
    }
  });

  // -- faults ------------------------------------------------------------------------------

  const faultPath = () => `${LOCAL}/faults/${enc(state.ns)}/${enc(state.id)}`;

  function showFault(fault) {
    const set = Object.entries(fault)
      .filter(([k, v]) => v !== null && v !== false && v !== 0 && k !== "namespace" && k !== "instance_id")
      .map(([k, v]) => `${k}=${fmtValue(v)}`);
    $("fault-result").textContent = `Fault set on ${state.id}: ${set.join(", ") || "nothing"}`;
  }

  // the fault installed now (by this page, a test or curl): GET answers 404 when there is none
  async function loadFault() {
    setError("fault-error", null);
    const id = state.id;
    try {
      const fault = (await api("GET", faultPath())).result || {};
      if (state.id === id) showFault(fault);
    } catch (err) {
      if (state.id !== id) return;
      if (err instanceof ApiError && err.status === 404) $("fault-result").textContent = `No fault on ${id}.`;
      else setError("fault-error", err);
    }
  }

  $("fault-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    setError("fault-error", null);
    const body = {};
    for (const [id, name] of [
      ["fault-status", "status"],
      ["fault-code", "code"],
      ["fault-latency", "latency_ms"],
      ["fault-retry-after", "retry_after"],
      ["fault-times", "times"],
    ]) {
      const raw = $(id).value.trim();
      if (raw) body[name] = Number(raw);
    }
    if ($("fault-truncate").checked) body.truncate_stream = true;
    if ($("fault-malformed").checked) body.malformed_body = true;
    try {
      showFault((await api("PUT", faultPath(), body)).result || {});
    } catch (err) {
      setError("fault-error", err);
    }
  });

  $("fault-clear").addEventListener("click", async () => {
    setError("fault-error", null);
    try {
      await api("DELETE", faultPath());
      $("fault-result").textContent = `No fault on ${state.id}.`;
    } catch (err) {
      setError("fault-error", err);
    }
  });

  $("fault-clear-all").addEventListener("click", async () => {
    setError("fault-error", null);
    try {
      await api("DELETE", `${LOCAL}/faults`);
      $("fault-result").textContent = "Every fault cleared.";
    } catch (err) {
      setError("fault-error", err);
    }
  });

  // -- start -------------------------------------------------------------------------------

  $("refresh").addEventListener("click", () => loadTree().catch((err) => setError("tree-error", err)));

  async function start() {
    try {
      const health = (await api("GET", `${LOCAL}/health`)).result || {};
      $("server-info").textContent = `embedder ${fmtValue(health.embedder)} · generator ${fmtValue(health.generator)}`;
    } catch (_) {
      $("server-info").textContent = "";
    }
    try {
      await loadTree();
    } catch (err) {
      if (isAuthError(err)) return; // the token panel is showing
      show($("layout"), true);
      show($("forget-token"), Boolean(token()));
      setError("tree-error", err);
      return;
    }
    show($("token-panel"), false);
    show($("layout"), true);
    show($("forget-token"), Boolean(token()));
    const want = readHash();
    if (want.ns && want.id) await openInstance(want.ns, want.id, want.tab);
    else if (want.ns) await openNamespace(want.ns);
    else {
      const first = document.querySelector("#tree .instance-link");
      const ns = document.querySelector("#tree .ns-link");
      if (first) await openInstance(first.dataset.ns, first.dataset.instance, "overview");
      else if (ns) await openNamespace(ns.dataset.ns); // nothing yet: offer to create one
      else showView("welcome");
    }
  }

  start();
})();
