// The clinicians' page: builds the case form from the case's JSON Schema, asks the service for the
// answer whenever the form changes, and shows it with its reasons. No libraries, no external assets.
// The case travels in the address as query parameters (see case_query in service/page.py):
// one per given field, true/false for flags, comma-separated items for lists.
"use strict";

(function () {
  const API = {
    schema: "api/v1/case-schema",
    sites: "api/v1/sites",
    sources: "api/v1/sources",
    answer: "api/v1/recommendations/explained",
  };
  const FIRST = ["site", "injectate"];
  const EQUIPMENT = "available_modalities";
  const REQUIRED_WITHOUT_SITE = ["region", "depth", "tissue"];
  const MODALITIES = ["ultrasound", "fluoroscopy", "both", "landmark"];
  const DELAY_MS = 120;
  const RETRY_MS = [2000, 5000, 10000, 30000]; // after an outage the page asks again by itself

  const state = { fields: [], byName: {}, sites: null, sources: {}, seq: 0, timer: null, controller: null, answer: null, lastSent: null, retry: null, failures: 0, cautions: null };

  // ---- small helpers ------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const words = (value) => String(value).replace(/_/g, " ");
  const label = (name) => { const w = words(name); return w.charAt(0).toUpperCase() + w.slice(1); };
  const shown = (value) => {
    if (value === true) return "yes";
    if (value === false) return "no";
    if (Array.isArray(value)) return value.length ? value.map(words).join(", ") : "none";
    return words(value);
  };

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  // ---- the form, from the schema ----------------------------------------------------------

  function describe(name, prop, defs, required) {
    // One field: its kind (enum, bool, list) and allowed values, read from the JSON Schema.
    const options = prop.anyOf ? prop.anyOf.filter((p) => p.type !== "null") : [prop];
    const nullable = Boolean(prop.anyOf && prop.anyOf.some((p) => p.type === "null"));
    const resolveRef = (p) => (p && p.$ref ? defs[p.$ref.split("/").pop()] : p);
    const main = resolveRef(options[0]) || {};
    const field = { name, label: label(name), hint: name === "site" ? "" : (prop.description || ""), nullable, required };
    if (main.type === "boolean") return Object.assign(field, { kind: "bool", values: [true, false] });
    if (main.type === "array") return Object.assign(field, { kind: "list", values: resolveRef(main.items).enum || [] });
    return Object.assign(field, { kind: "enum", values: main.enum || [] });
  }

  function orderFields(fields) {
    // Site first, then the injectate; then the target, the variances, the flags, the equipment.
    const rank = (f) => {
      const first = FIRST.indexOf(f.name);
      if (first >= 0) return first;
      if (f.name === EQUIPMENT) return 6;
      return { enum: 2, list: 3, bool: 4 }[f.kind];
    };
    return fields.map((f, i) => [rank(f), i, f]).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map((x) => x[2]);
  }

  function errorNode(name) {
    return el("p", { class: "error", id: `error-${name}`, hidden: true });
  }

  function hintNode(field) {
    return field.hint ? el("p", { class: "hint", id: `hint-${field.name}`, text: field.hint }) : null;
  }

  function describedBy(field) {
    return [field.hint ? `hint-${field.name}` : null, `assumed-${field.name}`, `error-${field.name}`].filter(Boolean).join(" ");
  }

  function buildSelect(field) {
    const select = el("select", { id: `f-${field.name}`, name: field.name, "aria-describedby": describedBy(field) });
    const first = el("option", { value: "" });
    first.dataset.unknown = "1";
    select.append(first);
    for (const value of field.values) {
      const title = field.name === "site" && state.sites.sites[value] ? state.sites.sites[value].title : words(value);
      select.append(el("option", { value, text: title }));
    }
    select.addEventListener("change", () => {
      select.querySelectorAll("option[data-invalid]").forEach((o) => { if (!o.selected) o.remove(); });
      changed();
    });
    const box = el("div", { class: `field field-${field.kind}`, id: `field-${field.name}` },
      el("label", { for: select.id, text: field.label }), hintNode(field), select,
      el("p", { class: "assumed", id: `assumed-${field.name}` }), errorNode(field.name));
    return { box, control: select };
  }

  function buildBool(field) {
    const choices = el("div", { class: "choices" });
    const make = (value, text) => {
      const id = `f-${field.name}-${value === "" ? "unknown" : value}`;
      const input = el("input", { type: "radio", name: field.name, id, value });
      input.addEventListener("change", changed);
      const lab = el("label", { for: id }, text);
      choices.append(el("span", { class: "choice" }, input, lab));
      return input;
    };
    make("true", "Yes");
    make("false", "No");
    make("", el("span", {}, "Not known ", el("span", { class: "assumed-inline", id: `assumed-${field.name}` }))).checked = true;
    const box = el("fieldset", { class: "field field-bool", id: `field-${field.name}`, "aria-describedby": describedBy(field) },
      el("legend", { text: field.label }), hintNode(field), choices, errorNode(field.name));
    return { box, control: choices };
  }

  function buildList(field) {
    const choices = el("div", { class: "choices" });
    const unknownId = `f-${field.name}-unknown`;
    const unknown = el("input", { type: "checkbox", id: unknownId, checked: true });
    unknown.dataset.unknown = "1";
    unknown.addEventListener("change", () => {
      if (unknown.checked) choices.querySelectorAll("input[data-item]").forEach((i) => { i.checked = false; });
      choices.querySelectorAll("input[data-invalid]").forEach((i) => i.closest(".choice").remove());
      changed();
    });
    choices.append(el("span", { class: "choice" }, unknown,
      el("label", { for: unknownId }, "Not known ", el("span", { class: "assumed-inline", id: `assumed-${field.name}` }))));
    for (const value of field.values) addItem(field, choices, value, false);
    const box = el("fieldset", { class: "field field-list", id: `field-${field.name}`, "aria-describedby": describedBy(field) },
      el("legend", { text: field.label }), hintNode(field), choices, errorNode(field.name));
    return { box, control: choices };
  }

  function addItem(field, choices, value, invalid) {
    const id = `f-${field.name}-${String(value).replace(/[^A-Za-z0-9_-]/g, "_")}${invalid ? "-invalid" : ""}`;
    const input = el("input", { type: "checkbox", id, value });
    input.dataset.item = "1";
    if (invalid) input.dataset.invalid = "1";
    input.addEventListener("change", () => {
      if (input.checked) choices.querySelector("input[data-unknown]").checked = false;
      changed();
    });
    const text = invalid ? `${value} (not a valid value)` : words(value);
    choices.append(el("span", { class: invalid ? "choice invalid-choice" : "choice" }, input, el("label", { for: id, text })));
    return input;
  }

  function buildForm(schema) {
    const defs = schema.$defs || {};
    const required = schema.required || [];
    const fields = Object.entries(schema.properties).map(([name, prop]) => describe(name, prop, defs, required.includes(name)));
    state.fields = orderFields(fields);
    const holder = document.getElementById("fields");
    holder.textContent = "";
    const groups = [
      ["Site and injectate", (f) => FIRST.includes(f.name)],
      ["The target", (f) => f.kind === "enum" && !FIRST.includes(f.name)],
      ["Anatomy", (f) => f.kind === "list" && f.name !== EQUIPMENT],
      ["Findings", (f) => f.kind === "bool"],
      ["The clinic's equipment", (f) => f.name === EQUIPMENT],
    ];
    for (const [title, test] of groups) {
      const members = state.fields.filter(test);
      if (!members.length) continue;
      const section = el("section", { class: "group" }, el("h3", { text: title }));
      for (const field of members) {
        const built = field.kind === "bool" ? buildBool(field) : field.kind === "list" ? buildList(field) : buildSelect(field);
        field.box = built.box;
        field.control = built.control;
        state.byName[field.name] = field;
        section.append(built.box);
        if (field.name === "site") section.append(el("p", { class: "hint site-why", id: "site-why" }));
      }
      holder.append(section);
    }
    const injectate = state.byName.injectate;
    if (injectate) injectate.control.querySelector("option").textContent = "Choose the injectate";
  }

  // ---- reading and writing the form ------------------------------------------------------

  function readField(field) {
    // The given value, or undefined when not known.
    if (field.kind === "enum") return field.control.value === "" ? undefined : field.control.value;
    if (field.kind === "bool") {
      const checked = field.control.querySelector("input:checked");
      if (!checked || checked.value === "") return undefined;
      if (checked.value === "true") return true;
      if (checked.value === "false") return false;
      return checked.value; // an invalid value from the address, sent as given so the service names it
    }
    if (field.control.querySelector("input[data-unknown]").checked) return undefined;
    return Array.from(field.control.querySelectorAll("input[data-item]:checked")).map((i) => i.value);
  }

  function readCase() {
    const data = {};
    for (const field of state.fields) {
      const value = readField(field);
      if (value !== undefined) data[field.name] = value;
    }
    return data;
  }

  function writeField(field, raw) {
    // Set a field from its text in the address; a value the schema does not allow is kept and
    // marked, so the service can say what is wrong with it beside the field.
    if (field.kind === "enum") {
      let option = Array.from(field.control.options).find((o) => o.value === raw);
      if (!option) {
        option = el("option", { value: raw, text: `${raw} (not a valid value)` });
        option.dataset.invalid = "1";
        field.control.append(option);
      }
      field.control.value = raw;
    } else if (field.kind === "bool") {
      let input = field.control.querySelector(`input[value="${CSS.escape(raw)}"]`);
      if (!input) {
        const id = `f-${field.name}-invalid`;
        input = el("input", { type: "radio", name: field.name, id, value: raw });
        input.dataset.invalid = "1";
        input.addEventListener("change", changed);
        field.control.append(el("span", { class: "choice invalid-choice" }, input, el("label", { for: id, text: `${raw} (not a valid value)` })));
      }
      input.checked = true;
    } else {
      field.control.querySelector("input[data-unknown]").checked = false;
      const items = raw.split(",").map((s) => s.trim()).filter(Boolean);
      for (const item of items) {
        let input = Array.from(field.control.querySelectorAll("input[data-item]")).find((i) => i.value === item);
        if (!input) input = addItem(field, field.control, item, true);
        input.checked = true;
      }
    }
  }

  function readQuery() {
    const params = new URLSearchParams(window.location.search);
    let any = false;
    const unknown = [];
    for (const [name, raw] of params) {
      const field = state.byName[name];
      if (!field) { unknown.push(name); continue; }
      writeField(field, raw);
      any = true;
    }
    const equipment = state.byName[EQUIPMENT];
    if (!any && equipment) writeField(equipment, state.sites.clinic_equipment.join(","));
    return unknown;
  }

  function query(data) {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(data)) {
      params.append(name, Array.isArray(value) ? value.join(",") : String(value));
    }
    return params.toString();
  }

  // ---- what a not-known field will be taken to be ------------------------------------------

  function originText(origin) {
    if (origin === "default") return "default";
    const [kind, key] = origin.split(":");
    if (kind === "site") return `${state.sites.sites[key] ? state.sites.sites[key].title : key} default`;
    if (kind === "tissue") return `${words(key)} default`;
    return origin;
  }

  function expected(data) {
    // The value each not-given field is filled with, in the rule base's order: the site, then
    // the tissue defaults, then the field defaults (the answer's assumptions say the same).
    const site = state.sites.sites[data.site];
    const out = {};
    const tissue = data.tissue !== undefined ? data.tissue : site && site.defaults.tissue;
    for (const field of state.fields) {
      if (FIRST.includes(field.name) || data[field.name] !== undefined) continue;
      if (site && field.name in site.defaults) out[field.name] = { value: site.defaults[field.name], origin: `site:${data.site}` };
      else if (!site && REQUIRED_WITHOUT_SITE.includes(field.name)) {
        if (data.site === undefined) out[field.name] = { required: true }; // an unknown site: nothing to say until it is fixed
      }
      else if (tissue && state.sites.tissue_defaults[tissue] && field.name in state.sites.tissue_defaults[tissue]) {
        out[field.name] = { value: state.sites.tissue_defaults[tissue][field.name], origin: `tissue:${tissue}` };
      } else if (field.name in state.sites.field_defaults) out[field.name] = { value: state.sites.field_defaults[field.name], origin: "default" };
    }
    return out;
  }

  function showExpected(data) {
    const filled = expected(data);
    for (const field of state.fields) {
      const node = document.getElementById(`assumed-${field.name}`);
      if (!node) continue;
      const fill = filled[field.name];
      let text = "";
      if (fill && fill.required) text = "→ required when no site is given";
      else if (fill) text = `→ ${shown(fill.value)} (${originText(fill.origin)})`;
      if (field.kind === "enum") {
        const first = field.control.querySelector("option[data-unknown]");
        if (field.name !== "site" && field.name !== "injectate") first.textContent = fill ? `Not known ${text}` : "Not known";
        node.textContent = "";
        node.hidden = true;
      } else {
        node.textContent = text;
      }
    }
    const why = document.getElementById("site-why");
    const site = state.sites.sites[data.site];
    if (why) {
      why.textContent = site ? site.why : data.site === undefined ? "No catalogue site: describe the target field by field below." : "";
    }
    const siteSelect = state.byName.site && state.byName.site.control.querySelector("option[data-unknown]");
    if (siteSelect) siteSelect.textContent = "No catalogue site (another target)";
  }

  // ---- asking the service ------------------------------------------------------------------

  function changed() {
    // Wait a moment for more changes; `data-pending` tells a test (or a screen) an answer is due.
    clearTimeout(state.timer);
    state.waiting = true;
    document.body.dataset.pending = "1";
    markStale();
    state.timer = setTimeout(update, DELAY_MS);
  }

  function markStale() {
    // The answer on screen belongs to the case before this change: fade it and say so at once.
    const result = document.getElementById("result");
    if (result.hidden || result.classList.contains("stale")) return;
    result.classList.add("stale");
    result.setAttribute("aria-hidden", "true");
    const status = document.getElementById("status");
    status.textContent = "Out of date: the answer for the changed case is on its way.";
    status.className = "stale";
  }

  function retryLater() {
    // The service could not be reached: ask again by itself, backing off, until it answers.
    clearTimeout(state.retry);
    const wait = RETRY_MS[Math.min(state.failures || 0, RETRY_MS.length - 1)];
    state.failures = (state.failures || 0) + 1;
    state.retry = setTimeout(() => { if (!state.waiting) update(); }, wait);
  }

  async function update() {
    state.waiting = false;
    const data = readCase();
    const text = query(data);
    window.history.replaceState(null, "", text ? `?${text}` : window.location.pathname);
    document.getElementById("case-link").setAttribute("href", `page${text ? `?${text}` : ""}`);
    showExpected(data);
    if (Object.keys(data).length === 0 || (Object.keys(data).length === 1 && data[EQUIPMENT])) {
      clearErrors();
      showStatus("Choose the site and the injectate to see the answer.", false);
      finish("empty", data);
      return;
    }
    const seq = ++state.seq;
    clearTimeout(state.retry);
    markStale();
    if (state.controller) state.controller.abort();
    state.controller = new AbortController();
    document.getElementById("answer").setAttribute("aria-busy", "true");
    document.body.dataset.state = "loading";
    let response, body;
    try {
      response = await fetch(API.answer, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(data),
        signal: state.controller.signal,
      });
      body = await response.json();
    } catch (error) {
      if (error.name === "AbortError") return;
      if (seq !== state.seq) return;
      showStatus(`The service could not be reached (${error.message}); the form keeps your case, and the page asks again by itself.`, true);
      finish("offline", data);
      retryLater();
      return;
    }
    if (seq !== state.seq) return;
    state.failures = 0;
    clearErrors();
    if (response.ok) {
      renderAnswer(body, data);
      finish("ready", data);
    } else if (response.status === 400 && body && Array.isArray(body.issue)) {
      showErrors(body.issue);
      finish("invalid", data);
    } else {
      const detail = body && body.issue ? body.issue.map((i) => i.diagnostics).join("; ") : `HTTP ${response.status}`;
      showStatus(`The service could not answer: ${detail}`, true);
      finish("error", data);
    }
  }

  function finish(status, data) {
    // The page shows the answer (or the problems) for exactly this case.
    document.getElementById("answer").removeAttribute("aria-busy");
    document.body.dataset.state = status;
    document.body.dataset.case = JSON.stringify(data);
    if (!state.waiting) document.body.dataset.pending = "0";
  }

  function showStatus(text, problem) {
    const status = document.getElementById("status");
    status.textContent = text;
    status.className = problem ? "problem" : "";
    const result = document.getElementById("result");
    result.hidden = true;
    result.classList.remove("stale");
    result.removeAttribute("aria-hidden");
    document.getElementById("patient-questions").hidden = true;
  }

  function clearErrors() {
    for (const field of state.fields) {
      const node = document.getElementById(`error-${field.name}`);
      node.textContent = "";
      node.hidden = true;
      field.box.classList.remove("invalid");
      field.box.querySelectorAll("select, input").forEach((c) => c.removeAttribute("aria-invalid"));
    }
    const general = document.getElementById("form-error");
    general.textContent = "";
    general.hidden = true;
  }

  function showErrors(issues) {
    // Each problem beside the field it names (a contradiction names several); the rest on top.
    const general = [];
    for (const issue of issues) {
      const names = String((issue.expression || [""])[0] || "").split(",").map((s) => s.trim()).filter(Boolean);
      const known = names.filter((n) => state.byName[n]);
      if (!known.length) general.push(issue.diagnostics);
      for (const name of known) {
        const node = document.getElementById(`error-${name}`);
        node.append(el("span", { class: "message", text: issue.diagnostics }));
        node.hidden = false;
        const field = state.byName[name];
        field.box.classList.add("invalid");
        field.box.querySelectorAll("select, input").forEach((c) => c.setAttribute("aria-invalid", "true"));
      }
    }
    const box = document.getElementById("form-error");
    if (general.length) {
      box.textContent = general.join(" ");
      box.hidden = false;
    }
    const count = issues.length;
    showStatus(`No recommendation: the case has ${count === 1 ? "a problem" : `${count} problems`}, shown beside ${count === 1 ? "its field" : "their fields"}.`, true);
  }

  // ---- the answer --------------------------------------------------------------------------

  function citationLink(citation) {
    const source = state.sources[citation.source];
    const id = String(citation.locator).split(" - ").pop();
    const isProposition = source && source.propositions && source.propositions[id];
    const anchor = isProposition ? `src-${citation.source}-${id}` : `src-${citation.source}`;
    const text = isProposition ? `${citation.source} ${id}` : `${citation.source}, ${citation.locator}`;
    const title = isProposition ? `${source.propositions[id].section}: ${source.propositions[id].summary}` : source ? source.title : "";
    const link = el("a", { href: `#${anchor}`, class: "cite", title, text });
    link.dataset.source = citation.source;
    return link;
  }

  function citations(list) {
    const span = el("span", { class: "cites" });
    list.forEach((c, i) => {
      if (i) span.append("; ");
      span.append(citationLink(c));
    });
    return span;
  }

  function fill(id, nodes, empty) {
    const holder = document.getElementById(id);
    holder.textContent = "";
    if (!nodes.length) holder.append(el("li", { class: "none", text: empty }));
    nodes.forEach((n) => holder.append(n));
  }

  function renderAnswer(body, data) {
    const rec = body.recommendation;
    state.answer = body;
    const modality = document.getElementById("modality");
    modality.textContent = rec.modality === "both" ? "Both: ultrasound and fluoroscopy" : label(rec.modality);
    modality.className = `modality m-${rec.modality}`;
    modality.dataset.modality = rec.modality;

    const rows = document.querySelector("#ratings tbody");
    rows.textContent = "";
    for (const m of MODALITIES) {
      const rating = rec.ratings[m];
      const row = el("tr", { class: m === rec.modality ? "chosen" : null },
        el("th", { scope: "row", text: m === rec.modality ? `${label(m)} (recommended)` : label(m) }),
        el("td", {}, el("span", { class: `rating r-${rating.category}`, text: words(rating.category) })),
        el("td", { class: "rules", text: rating.rules.join(", ") }));
      row.dataset.modality = m;
      row.dataset.category = rating.category;
      rows.append(row);
    }

    const matters = {};
    for (const input of body.inputs_that_matter) matters[input.field] = input;
    fill("assumptions", rec.assumptions.map((a) => {
      const input = matters[a.field];
      const important = Boolean(input && input.otherwise.length);
      const item = el("li", { class: important ? "assumption matters" : "assumption" },
        important ? el("strong", { class: "tag", text: "matters" }) : null,
        el("span", { class: "tag assumed-tag", text: "assumed" }), " ",
        el("strong", { text: label(a.field) }), ` ${shown(a.value)} `,
        el("span", { class: "origin", text: `(${originText(a.origin)})` }));
      if (important) {
        const outcomes = input.otherwise.map((o) => `${o.changes.map((c) => (c.item ? `${c.after ? "with" : "without"} ${words(c.item)}` : shown(c.after))).join(" and ")} → ${o.modality}`);
        item.append(el("span", { class: "otherwise", text: ` If otherwise: ${outcomes.join("; ")}.` }));
      }
      item.dataset.field = a.field;
      return item;
    }), "None: the case gave every value.");

    renderBottomLine(rec);
    fill("steps", rec.reasoning.map((step) => {
      const facts = Object.entries(step.facts).map(([k, v]) => `${words(k)} = ${shown(v)}`).join(", ");
      const item = el("li", { class: step.overridden_by ? "step overridden" : "step" },
        el("p", { class: "conclusion", text: step.conclusion }),
        el("p", { class: "meta" }, "Rule ", el("code", { text: step.rule }), facts ? ` · because ${facts}` : "",
          step.reasons.length ? "" : " · Sources: ", step.reasons.length ? null : citations(step.sources)));
      if (step.reasons.length) {
        // One step for several reasons leading to the same fact: each reason with its own sources.
        item.append(el("ul", { class: "reasons" }, ...step.reasons.map((r) => {
          const li = el("li", {}, r.conclusion, " ", el("span", { class: "meta" }, "(", el("code", { text: r.rule }), "; ", citations(r.sources), ")"));
          li.dataset.rule = r.rule;
          return li;
        })));
      }
      item.dataset.rule = step.rule;
      if (step.overridden_by) item.dataset.overriddenBy = step.overridden_by;
      return item;
    }), "No rule fired.");
    document.getElementById("steps-count").textContent = `${rec.reasoning.length} steps`;

    const note = (n) => { const li = el("li", {}, n.text, " ", el("span", { class: "meta" }, "(", el("code", { text: n.rule }), "; ", citations(n.sources), ")")); li.dataset.rule = n.rule; return li; };
    fill("cautions", rec.cautions.map(note), "None.");
    fill("documentation", rec.documentation.map(note), "None.");
    fill("questions", rec.questions.map(note), "None.");

    const evidence = document.getElementById("evidence");
    evidence.textContent = "";
    if (rec.evidence.length) {
      const table = el("table", { class: "evidence" },
        el("thead", {}, el("tr", {}, ...["Measure", "Ultrasound", "Landmark", "Note", "Source"].map((h) => el("th", { scope: "col", text: h })))));
      const tbody = el("tbody");
      for (const ev of rec.evidence) {
        tbody.append(el("tr", {}, el("td", { text: ev.measure }), el("td", { text: ev.ultrasound || "" }), el("td", { text: ev.landmark || "" }),
          el("td", { text: ev.note || "" }), el("td", {}, citationLink(ev.source))));
      }
      table.append(tbody);
      evidence.append(table);
    } else {
      evidence.append(el("p", { class: "none", text: "No figures for this target: it is not a catalogue site." }));
    }

    renderSources(rec);
    renderPatientQuestions(rec, data);
    document.getElementById("ruleset").textContent =
      `Rule base ${rec.ruleset.version} (${rec.ruleset.digest.slice(0, 19)}…). Decision support only: the clinician decides.`;
    // The live region says what changed that matters: the modality and any caution not shown before.
    const before = new Set(state.cautions || []);
    const fresh = rec.cautions.filter((n) => !before.has(n.rule) && !rec.summary.cautions.includes(n.text));
    state.cautions = rec.cautions.map((n) => n.rule);
    const told = rec.summary.cautions.length ? ` Refer: ${rec.summary.cautions.join(" ")}` : "";
    const news = fresh.length && before.size ? ` New caution${fresh.length > 1 ? "s" : ""}: ${fresh.map((n) => n.text).join(" ")}` : "";
    document.getElementById("status").textContent = `Updated: ${label(rec.modality)} guidance recommended.${told}${news}`;
    document.getElementById("status").className = "";
    const result = document.getElementById("result");
    result.classList.remove("stale");
    result.removeAttribute("aria-hidden");
    result.hidden = false;
    renderPrintFoot(rec, data);
  }

  function renderBottomLine(rec) {
    // Beside the headline: the decisive reason, the site's key figure with its source, refer cautions.
    const summary = rec.summary;
    document.getElementById("bl-reason").textContent = summary.reason;
    const figure = document.getElementById("bl-figure");
    figure.textContent = "";
    if (summary.figure) figure.append("Key figure: ", summary.figure.text, " (", citationLink(summary.figure.source), ")");
    figure.hidden = !summary.figure;
    const refer = document.getElementById("bl-refer");
    refer.textContent = "";
    summary.cautions.forEach((text) => refer.append(el("li", { text })));
    refer.hidden = !summary.cautions.length;
  }

  function renderPrintFoot(rec, data) {
    // The clinician's print: the case, the rule base version and digest, the date and the link.
    const given = Object.entries(data).map(([k, v]) => `${words(k)} ${shown(v)}`).join("; ");
    document.getElementById("print-foot").textContent =
      `Case: ${given}. Rule base ${rec.ruleset.version}, ${rec.ruleset.digest}. Printed ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC. ${window.location.href}`;
  }

  function renderSources(rec) {
    // Every source this answer cites, with the article's propositions, so each citation opens.
    const cited = new Map();
    const add = (c) => {
      const id = String(c.locator).split(" - ").pop();
      if (!cited.has(c.source)) cited.set(c.source, new Set());
      const source = state.sources[c.source];
      if (source && source.propositions && source.propositions[id]) cited.get(c.source).add(id);
    };
    rec.reasoning.forEach((s) => s.sources.forEach(add));
    [rec.cautions, rec.documentation, rec.questions].forEach((list) => list.forEach((n) => n.sources.forEach(add)));
    rec.evidence.forEach((e) => add(e.source));
    const holder = document.getElementById("sources");
    holder.textContent = "";
    const list = el("ul");
    for (const [key, ids] of cited) {
      const source = state.sources[key] || { title: key, propositions: {} };
      const item = el("li", { id: `src-${key}`, tabindex: "-1" }, el("strong", { text: key }), `: ${source.title}`);
      if (ids.size) {
        const props = el("ul");
        for (const id of Array.from(ids).sort()) {
          const p = source.propositions[id];
          props.append(el("li", { id: `src-${key}-${id}`, tabindex: "-1" }, el("strong", { text: id }), ` ${p.section}: ${p.summary}`));
        }
        item.append(props);
      }
      list.append(item);
    }
    holder.append(list);
  }

  function renderPatientQuestions(rec, data) {
    const site = state.sites.sites[data.site];
    document.getElementById("pq-case").textContent =
      `For a ${data.injectate ? `${words(data.injectate)} ` : ""}injection ${site ? `into the ${site.title.toLowerCase()}` : "at the planned target"}` +
      ` (recommended guidance: ${rec.modality}). Ask your clinician before the injection is booked:`;
    const list = document.getElementById("pq-list");
    list.textContent = "";
    rec.questions.forEach((q) => list.append(el("li", { text: q.text })));
    document.getElementById("pq-foot").textContent = `guidance-rules, rule base ${rec.ruleset.version}. ${window.location.href}`;
    document.getElementById("patient-questions").hidden = false;
  }

  // ---- start -------------------------------------------------------------------------------

  async function start() {
    try {
      const [schema, sites, sources] = await Promise.all([getJSON(API.schema), getJSON(API.sites), getJSON(API.sources)]);
      state.sites = sites;
      state.sources = sources;
      buildForm(schema);
    } catch (error) {
      document.getElementById("fields").textContent = `The form could not be loaded from the service: ${error.message}. Reload the page to try again.`;
      document.body.dataset.state = "offline";
      return;
    }
    const unknown = readQuery();
    if (unknown.length) {
      const note = document.getElementById("link-note");
      note.textContent = `The link names ${unknown.join(", ")}, which ${unknown.length === 1 ? "is not a case field" : "are not case fields"}: ignored.`;
      note.hidden = false;
    }
    // Answers follow every change; Enter in the form must not reload the page.
    document.getElementById("case-form").addEventListener("submit", (event) => event.preventDefault());
    document.getElementById("print-questions").addEventListener("click", () => {
      document.body.classList.add("printing-questions");
      window.print();
    });
    window.addEventListener("afterprint", () => document.body.classList.remove("printing-questions"));
    document.getElementById("print-answer").addEventListener("click", () => {
      document.getElementById("reasoning").open = true;
      window.print();
    });
    document.getElementById("ruleset").textContent =
      `Rule base ${state.sites.ruleset.version} (${state.sites.ruleset.digest.slice(0, 19)}…). Decision support only: the clinician decides.`;
    await update();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
