// The knowledge workbench: unlock (the review page's session cookie), find and open entries, edit
// one with checks as it is typed, collect edits in a draft (sessionStorage: playbook text only,
// never a credential), preview the draft's impact, publish it, browse and restore the history.
"use strict";

(function () {
  const { el, requestJSON, percent, adminSession } = window.Playbook;
  const DRAFT_KEY = "playbook.workbench.draft";
  const ENTRY_ID = /^[a-z0-9][a-z0-9-]{0,79}$/;
  const SEARCH_DELAY = 150;
  const CHECK_DELAY = 400;
  const LEVELS = { error: "Error", warning: "Warning", info: "Info" };
  const KINDS = { fixed: "fixed", broken: "broken", changed: "changed" };
  // The quality gate's figures (`make gate`); for the last two, lower is better.
  const GATE = [
    ["top1", "Top answer right", false],
    ["recall_at_3", "Right entry in the top 3", false],
    ["abstention", "Out-of-scope questions refused", false],
    ["wrong_refusal", "In-scope questions refused", true],
    ["confident_wrong", "Confidently wrong", true],
  ];

  const $ = function (id) { return document.getElementById(id); };
  const tokenForm = $("token-form");
  const tokenInput = $("token");
  const statusBox = $("wb-status");
  const workbench = $("workbench");
  const searchInput = $("search");
  const searchCount = $("search-count");
  const results = $("results");
  const editor = $("editor");
  const editorEmpty = $("editor-empty");
  const editorMode = $("editor-mode");
  const fields = {
    id: $("f-id"), question: $("f-question"), answer: $("f-answer"), macro: $("f-macro"),
    alternates: $("f-alternates"), tags: $("f-tags"), conditions: $("f-conditions"),
    retired: $("f-retired"),
  };
  const checkStatus = $("check-status");
  const checkProblems = $("check-problems");
  const draftList = $("draft-list");
  const draftStatus = $("draft-status");
  const previewButton = $("preview");
  const publishButton = $("publish");
  const discardButton = $("discard");
  const refreshBase = $("refresh-base");
  const impactBox = $("impact");
  const impactBody = $("impact-body");
  const impactBusy = $("impact-busy");
  const historyList = $("history");

  let latestHash = null;        // the knowledge_hash of the newest entry list
  let draft = readDraft();      // { base_hash, items: [{ entry, isNew }] }
  let editing = null;           // { key: the draft key or null, isNew, idTouched }
  let searchTimer = 0, searchSeq = 0;
  let checkTimer = 0, checkSeq = 0;
  let busy = false;
  let started = false;

  // ------------------------------------------------------------ plumbing

  function admin(method, url, body) {
    return requestJSON(method, url, body, { "X-Playbook-Admin": "1" });
  }

  function setStatus(box, text, isError) {
    box.textContent = text;
    box.classList.toggle("status--error", Boolean(isError));
  }

  function lock(message) {
    workbench.hidden = true;
    tokenForm.hidden = false;
    tokenInput.value = "";
    tokenInput.focus();
    setStatus(statusBox, message || "", Boolean(message));
  }

  // A failed admin call: an ended session locks the page; anything else is said in `box`.
  function failed(err, box) {
    if (err.status === 401) {
      lock("The session has ended: unlock again.");
    } else {
      setStatus(box || statusBox, err.message, true);
    }
  }

  function readDraft() {
    try {
      const saved = JSON.parse(window.sessionStorage.getItem(DRAFT_KEY) || "null");
      if (saved && Array.isArray(saved.items)) return saved;
    } catch (err) { /* unreadable: start afresh */ }
    return { base_hash: null, items: [] };
  }

  function saveDraft() {
    try {
      if (draft.items.length) window.sessionStorage.setItem(DRAFT_KEY, JSON.stringify(draft));
      else window.sessionStorage.removeItem(DRAFT_KEY);
    } catch (err) { /* storage full or off: the draft lives as long as the page */ }
  }

  function when(recordedAt) {
    return recordedAt.replace("T", " ").slice(0, 16) + " UTC";
  }

  function fold(text) {
    return String(text).normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function slug(text) {
    return fold(text).replace(/[^a-z0-9]+/g, "-").replace(/^-+/, "").slice(0, 60).replace(/-+$/, "");
  }

  function button(text, className) {
    const node = el("button", className || null, text);
    node.type = "button";
    return node;
  }

  // ------------------------------------------------------------ search

  function scheduleSearch() {
    window.clearTimeout(searchTimer);
    searchTimer = window.setTimeout(search, SEARCH_DELAY);
  }

  async function search() {
    const seq = ++searchSeq;
    const q = searchInput.value.trim();
    try {
      const data = await admin("GET", "/api/workbench/entries?limit=100&q=" + encodeURIComponent(q));
      if (seq !== searchSeq) return;  // a newer search is on its way
      latestHash = data.knowledge_hash;
      if (!draft.items.length) draft.base_hash = latestHash;
      renderResults(data);
      renderDraft();
    } catch (err) {
      if (seq === searchSeq) failed(err);
    }
  }

  function renderResults(data) {
    const shown = data.entries.length;
    searchCount.textContent = shown === 0 ? "No entry matches."
      : shown < data.total ? "Showing " + shown + " of " + data.total + " entries."
        : data.total + (data.total === 1 ? " entry." : " entries.");
    results.replaceChildren.apply(results, data.entries.map(function (entry) {
      const li = el("li");
      const open = button(null, "wb-result");
      open.dataset.entryId = entry.id;
      const top = el("span", "wb-result-top");
      top.appendChild(el("span", "wb-result-question", entry.question));
      if (entry.retired) top.appendChild(el("span", "badge badge--retired", "retired"));
      open.appendChild(top);
      const meta = el("span", "wb-result-meta");
      meta.appendChild(el("span", "mono", entry.id));
      if (entry.macro) meta.appendChild(el("span", "wb-result-macro", entry.macro));
      meta.appendChild(el("span", null, entry.alternates + (entry.alternates === 1 ? " phrasing" : " phrasings")));
      open.appendChild(meta);
      if (editing && !editing.isNew && fields.id.value === entry.id) {
        open.classList.add("is-open");
        open.setAttribute("aria-current", "true");
      }
      open.addEventListener("click", function () { openEntry(entry.id); });
      li.appendChild(open);
      return li;
    }));
  }

  // ------------------------------------------------------------ the editor

  function formatConditions(conditions) {
    return Object.keys(conditions || {}).map(function (slot) {
      const value = conditions[slot];
      return slot + ": " + (Array.isArray(value) ? "[" + value.join(", ") + "]" : value);
    }).join("\n");
  }

  function parseConditions(text, problems) {
    const conditions = {};
    text.split("\n").forEach(function (line, i) {
      const trimmed = line.trim();
      if (!trimmed) return;
      const colon = trimmed.indexOf(":");
      const slot = colon > 0 ? trimmed.slice(0, colon).trim() : "";
      let value = colon > 0 ? trimmed.slice(colon + 1).trim() : "";
      if (!slot || !value) {
        problems.push("Conditions, line " + (i + 1) + ": write it as slot: value");
        return;
      }
      if (value.startsWith("[") && value.endsWith("]")) {
        value = value.slice(1, -1).split(",").map(function (v) { return v.trim(); }).filter(Boolean);
      }
      if (Object.prototype.hasOwnProperty.call(conditions, slot)) {
        problems.push("Conditions: " + slot + " is given twice");
      }
      conditions[slot] = value;
    });
    return conditions;
  }

  function lines(text) {
    return text.split("\n").map(function (line) { return line.trim(); }).filter(Boolean);
  }

  // The entry as the form holds it, and what is wrong with it before the server is asked.
  function formEntry() {
    const problems = [];
    const entry = {
      id: fields.id.value.trim(),
      question: fields.question.value.trim(),
      answer: fields.answer.value.trim(),
      macro: fields.macro.value.trim() || null,
      alternates: lines(fields.alternates.value),
      tags: fields.tags.value.split(",").map(function (t) { return t.trim(); }).filter(Boolean),
      conditions: parseConditions(fields.conditions.value, problems),
      retired: fields.retired.checked,
    };
    if (!ENTRY_ID.test(entry.id)) {
      problems.unshift("Id: use 1–80 lowercase letters, digits and dashes, starting with a letter or digit");
    }
    if (!entry.question) problems.push("Question: required");
    if (!entry.answer) problems.push("Answer: required");
    return { entry: entry, problems: problems };
  }

  function fill(entry, state) {
    editing = state;
    fields.id.value = entry.id || "";
    fields.id.readOnly = !state.isNew;
    fields.question.value = entry.question || "";
    fields.answer.value = entry.answer || "";
    fields.macro.value = entry.macro || "";
    fields.alternates.value = (entry.alternates || []).join("\n");
    fields.tags.value = (entry.tags || []).join(", ");
    fields.conditions.value = formatConditions(entry.conditions);
    fields.retired.checked = Boolean(entry.retired);
    editorMode.textContent = state.isNew ? "New entry" + (state.key ? " (in the draft)" : "")
      : "Editing " + entry.id + (state.key ? " (from the draft)" : "");
    markOpen(state.isNew ? null : entry.id);
    editorEmpty.hidden = true;
    editor.hidden = false;
    checkStatus.textContent = "";
    checkProblems.replaceChildren();
    scheduleCheck();
  }

  // The result the editor holds is marked (and says so to screen readers).
  function markOpen(id) {
    results.querySelectorAll(".wb-result").forEach(function (node) {
      const open = id !== null && node.dataset.entryId === id;
      node.classList.toggle("is-open", open);
      if (open) node.setAttribute("aria-current", "true"); else node.removeAttribute("aria-current");
    });
  }

  function inDraft(id) {
    return draft.items.find(function (item) { return item.entry.id === id; }) || null;
  }

  async function openEntry(id, quiet) {
    const drafted = inDraft(id);
    if (drafted) {
      fill(drafted.entry, { key: id, isNew: drafted.isNew, idTouched: true });
    } else {
      let entry;
      try {
        entry = await admin("GET", "/api/workbench/entries/" + encodeURIComponent(id));
      } catch (err) {
        failed(err);
        return false;
      }
      delete entry.source;
      fill(entry, { key: null, isNew: false, idTouched: true });
    }
    if (!quiet) {
      fields.question.focus();
      setStatus(statusBox, "Opened " + id + ".");
    }
    return true;
  }

  function newEntry(question) {
    fill({ question: question || "" }, { key: null, isNew: true, idTouched: false });
    if (question) fields.id.value = slug(question);
    (question ? fields.answer : fields.question).focus();
    setStatus(statusBox, "New entry.");
  }

  function closeEditor() {
    window.clearTimeout(checkTimer);
    checkSeq++;
    editing = null;
    markOpen(null);
    editor.hidden = true;
    editorEmpty.hidden = false;
  }

  // ------------------------------------------------------------ checks as it is typed

  function scheduleCheck() {
    window.clearTimeout(checkTimer);
    checkTimer = window.setTimeout(check, CHECK_DELAY);
  }

  function problemItem(problem, ownId) {
    const li = el("li", "wb-problem wb-problem--" + problem.level);
    li.appendChild(el("span", "badge badge--" + problem.level, LEVELS[problem.level] || problem.level));
    if (problem.entry_id && problem.entry_id !== ownId) li.appendChild(el("span", "mono wb-problem-id", problem.entry_id));
    li.appendChild(el("span", "wb-problem-text", problem.message));
    return li;
  }

  function countText(problems) {
    if (!problems.length) return "No problems found.";
    return ["error", "warning", "info"].map(function (level) {
      const n = problems.filter(function (p) { return p.level === level; }).length;
      return n ? n + " " + (level === "info" ? "note" : level) + (n === 1 ? "" : "s") : null;
    }).filter(Boolean).join(", ") + ".";
  }

  function showProblems(problems, ownId) {
    checkStatus.textContent = countText(problems);
    checkProblems.replaceChildren.apply(checkProblems, problems.map(function (p) { return problemItem(p, ownId); }));
  }

  async function check() {
    if (!editing) return;
    const seq = ++checkSeq;
    const form = formEntry();
    if (form.problems.length) {
      showProblems(form.problems.map(function (message) {
        return { entry_id: "", level: "error", message: message };
      }), form.entry.id);
      return;
    }
    checkStatus.textContent = "Checking…";
    try {
      const result = await admin("POST", "/api/workbench/check",
                                 { entries: [form.entry], base_hash: draft.base_hash || latestHash });
      if (seq !== checkSeq) return;
      showProblems(result.problems, form.entry.id);
    } catch (err) {
      if (seq !== checkSeq) return;
      if (err.status === 401) { failed(err); return; }
      showProblems([{ entry_id: "", level: "error", message: err.message }], form.entry.id);
    }
  }

  // ------------------------------------------------------------ the draft

  function renderDraft() {
    const items = draft.items;
    $("draft-count").textContent = String(items.length);
    $("draft-empty").hidden = items.length > 0;
    $("draft-base").textContent = items.length && latestHash && draft.base_hash !== latestHash
      ? "The playbook has changed since this draft was started." : "";
    previewButton.disabled = publishButton.disabled = discardButton.disabled = busy || !items.length;
    draftList.replaceChildren.apply(draftList, items.map(function (item) {
      const entry = item.entry;
      const li = el("li", "wb-draft-item");
      const text = el("div", "wb-draft-text");
      const top = el("p", "wb-draft-top");
      top.appendChild(el("span", "badge badge--" + (item.isNew ? "new" : "edited"), item.isNew ? "new" : "edited"));
      if (entry.retired) top.appendChild(el("span", "badge badge--retired", "retired"));
      top.appendChild(el("span", "mono", entry.id));
      text.append(top, el("p", "wb-draft-question", entry.question));
      const edit = button("Edit", "tool");
      edit.setAttribute("aria-label", "Edit " + entry.id);
      edit.addEventListener("click", function () { openEntry(entry.id); });
      const remove = button("Remove", "tool");
      remove.setAttribute("aria-label", "Remove " + entry.id + " from the draft");
      remove.addEventListener("click", function () {
        draft.items = draft.items.filter(function (other) { return other !== item; });
        if (!draft.items.length) draft.base_hash = latestHash;
        saveDraft();
        renderDraft();
        if (editing && editing.key === entry.id) editing.key = null;
        setStatus(draftStatus, "Removed " + entry.id + " from the draft.");
      });
      const actions = el("div", "wb-draft-actions");
      actions.append(edit, remove);
      li.append(text, actions);
      return li;
    }));
  }

  function addToDraft(event) {
    event.preventDefault();
    if (!editing) return;
    const form = formEntry();
    if (form.problems.length) {
      showProblems(form.problems.map(function (message) {
        return { entry_id: "", level: "error", message: message };
      }), form.entry.id);
      setStatus(draftStatus, "Fix the entry first: " + form.problems[0] + ".", true);
      return;
    }
    if (!draft.items.length) draft.base_hash = latestHash;
    // The copy being edited (by its draft key, or the same id) is replaced where it stands.
    const item = { entry: form.entry, isNew: editing.isNew };
    const key = editing.key;
    let replaced = false;
    draft.items = draft.items.reduce(function (kept, other) {
      if (other.entry.id === form.entry.id || (key !== null && other.entry.id === key)) {
        if (!replaced) kept.push(item);
        replaced = true;
      } else {
        kept.push(other);
      }
      return kept;
    }, []);
    if (!replaced) draft.items.push(item);
    editing.key = form.entry.id;
    editing.idTouched = true;
    saveDraft();
    renderDraft();
    setStatus(draftStatus, (replaced ? "Updated " : "Added ") + form.entry.id + " in the draft (" +
              draft.items.length + (draft.items.length === 1 ? " entry)." : " entries)."));
  }

  function setBusy(on, box) {
    busy = on;
    renderDraft();
    if (box) box.setAttribute("aria-busy", String(on));
  }

  function draftBody() {
    return { entries: draft.items.map(function (item) { return item.entry; }),
             base_hash: draft.base_hash || latestHash };
  }

  // ------------------------------------------------------------ preview

  function side(answer) {
    return answer.returned === null ? "no confident match"
      : answer.returned + " (" + percent(answer.confidence) + ")";
  }

  function changeTable(id, caption, report) {
    const wrap = el("section", "wb-changes");
    const heading = el("h3", null, caption);
    heading.id = id + "-title";
    wrap.setAttribute("aria-labelledby", heading.id);
    wrap.appendChild(heading);
    const counts = report.counts;
    wrap.appendChild(el("p", "hint", counts.fixed + " fixed, " + counts.broken + " broken, " + counts.changed +
      " changed otherwise, " + counts.unchanged + " unchanged" +
      (counts.not_compared ? ", " + counts.not_compared + " not compared" : "") + "."));
    if (!report.queries.length) {
      wrap.appendChild(el("p", "empty", "No answer changes."));
      return wrap;
    }
    const scroll = el("div", "table-scroll");
    scroll.tabIndex = 0;
    scroll.setAttribute("role", "region");
    scroll.setAttribute("aria-label", caption + " (scrolls sideways)");
    const table = el("table", "wb-table");
    table.id = id;
    const head = el("tr");
    ["Question", "Change", "Before", "After"].forEach(function (name) {
      const th = el("th", null, name);
      th.scope = "col";
      head.appendChild(th);
    });
    table.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    report.queries.forEach(function (row) {
      const tr = el("tr");
      tr.appendChild(el("td", "wb-query", row.query));
      const kind = el("td");
      kind.appendChild(el("span", "badge badge--" + (KINDS[row.change] || "changed"), row.change));
      tr.append(kind, el("td", "wb-side", side(row.before)), el("td", "wb-side", side(row.after)));
      body.appendChild(tr);
    });
    table.appendChild(body);
    scroll.appendChild(table);
    wrap.appendChild(scroll);
    return wrap;
  }

  function figure(value) {
    return value === null || value === undefined ? "–" : (Math.round(value * 1000) / 10) + "%";
  }

  function gateTable(gate) {
    const wrap = el("section", "wb-gate");
    const heading = el("h3", null, "Quality gate, labelled questions");
    heading.id = "gate-title";
    wrap.setAttribute("aria-labelledby", heading.id);
    wrap.appendChild(heading);
    const table = el("table", "wb-table");
    table.id = "gate";
    const head = el("tr");
    ["Figure", "Before", "After", "Change"].forEach(function (name, i) {
      const th = el("th", i ? "num" : null, name);
      th.scope = "col";
      head.appendChild(th);
    });
    table.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    GATE.forEach(function (spec) {
      const pair = gate[spec[0]] || { before: null, after: null };
      const tr = el("tr");
      const name = el("th", null, spec[1]);
      name.scope = "row";
      let delta = "–", tone = "";
      if (pair.before !== null && pair.after !== null) {
        const points = Math.round((pair.after - pair.before) * 1000) / 10;
        delta = points === 0 ? "no change" : (points > 0 ? "+" : "−") + Math.abs(points) + " pts";
        if (points !== 0) tone = (points > 0) !== spec[2] ? "better" : "worse";
      }
      tr.append(name, el("td", "num", figure(pair.before)), el("td", "num", figure(pair.after)),
                el("td", "num" + (tone ? " wb-" + tone : ""), delta));
      body.appendChild(tr);
    });
    table.appendChild(body);
    wrap.appendChild(table);
    return wrap;
  }

  function renderImpact(result) {
    const nodes = [];
    if (result.problems.length) {
      const heading = el("h3", null, "Checks");
      const list = el("ul", "wb-problems");
      result.problems.forEach(function (p) { list.appendChild(problemItem(p, null)); });
      nodes.push(heading, list);
    }
    const impact = result.impact;
    if (!result.ok || !impact) {
      nodes.push(el("p", "status status--error", "Fix the errors above to see the draft's impact."));
      impactBody.replaceChildren.apply(impactBody, nodes);
      return;
    }
    const refused = el("p", "wb-refused");
    refused.id = "newly-refused";
    refused.appendChild(el("strong", null, String(impact.newly_refused)));
    refused.appendChild(document.createTextNode(
      (impact.newly_refused === 1 ? " question answered now gets" : " questions answered now get") +
      " “no confident match” with the draft."));
    nodes.push(refused);
    nodes.push(changeTable("impact-eval", "Labelled questions (eval set)", impact.eval));
    nodes.push(changeTable("impact-agents", "Questions agents gave a verdict on", impact.agents));
    const stale = el("section", "wb-stale");
    const staleTitle = el("h3", null, "Stale labels");
    staleTitle.id = "stale-title";
    stale.setAttribute("aria-labelledby", staleTitle.id);
    stale.appendChild(staleTitle);
    if (!impact.stale_labels.length) {
      stale.appendChild(el("p", "empty", "None: every label still names a live entry."));
    } else {
      const list = el("ul", "plain-list");
      list.id = "stale-labels";
      impact.stale_labels.forEach(function (s) {
        list.appendChild(el("li", null, "Line " + s.line + ": “" + s.query + "” expects " + s.entry_id +
          (s.retired ? ", which is retired" : ", which is no longer in the playbook") + " (relabel it)."));
      });
      stale.appendChild(list);
    }
    nodes.push(stale, gateTable(impact.gate));
    impactBody.replaceChildren.apply(impactBody, nodes);
  }

  async function preview() {
    if (busy || !draft.items.length) return;
    impactBox.hidden = false;
    impactBusy.hidden = false;
    impactBody.replaceChildren();
    setBusy(true, impactBox);
    setStatus(draftStatus, "Previewing the impact: this takes a few seconds…");
    try {
      const result = await admin("POST", "/api/workbench/preview", draftBody());
      renderImpact(result);
      setStatus(draftStatus, result.ok ? "Impact ready." : "The draft has errors.", !result.ok);
    } catch (err) {
      impactBox.hidden = true;
      failed(err, draftStatus);
    } finally {
      impactBusy.hidden = true;
      setBusy(false, impactBox);
    }
  }

  // ------------------------------------------------------------ publish

  async function refreshAfterChange() {
    await Promise.all([search(), loadHistory()]);
    // An open existing entry shows what the playbook now says (a draft copy stays a draft).
    if (editing && !editing.isNew && !inDraft(fields.id.value.trim())) {
      await openEntry(fields.id.value.trim(), true);
    }
  }

  async function publish() {
    if (busy || !draft.items.length) return;
    setBusy(true, null);
    refreshBase.hidden = true;
    setStatus(draftStatus, "Publishing and rebuilding the index…");
    try {
      const result = await admin("POST", "/api/workbench/publish", draftBody());
      const published = draft.items.map(function (item) { return item.entry.id; });
      draft = { base_hash: result.version ? result.version.knowledge_hash : null, items: [] };
      saveDraft();
      if (editing && published.indexOf(editing.key) >= 0) { editing.key = null; editing.isNew = false; }
      impactBox.hidden = true;
      setStatus(draftStatus, (result.version ? "Published as version " + result.version.version
        : "Published (the history could not be recorded)") + ": " + result.entries + " entries, " +
        result.vectors + " vectors.");
      await refreshAfterChange();
    } catch (err) {
      if (err.status === 409) {
        setStatus(draftStatus, "The playbook changed since this draft was started (someone " +
          "published or edited it). Refresh to take the current playbook as the base, check the " +
          "draft again, then publish.", true);
        refreshBase.hidden = false;
        refreshBase.focus();
      } else {
        failed(err, draftStatus);
      }
    } finally {
      setBusy(false, null);
    }
  }

  async function rebase() {
    refreshBase.hidden = true;
    draft.base_hash = null;
    await search();
    draft.base_hash = latestHash;
    saveDraft();
    renderDraft();
    loadHistory();
    if (editing) scheduleCheck();
    setStatus(draftStatus, "The draft now builds on the current playbook: preview it again before publishing.");
  }

  // ------------------------------------------------------------ history

  function changeLine(change) {
    const names = (change.fields || []).map(function (f) { return f.field; });
    return change.kind + " " + change.entry_id + (names.length ? ": " + names.join(", ") : "");
  }

  function versionItem(version, newest) {
    const li = el("li", "wb-version");
    li.dataset.version = String(version.version);
    const head = el("div", "wb-version-head");
    const title = el("p", "wb-version-title");
    title.appendChild(el("strong", null, "Version " + version.version));
    if (newest) title.appendChild(el("span", "badge badge--current", "current"));
    head.appendChild(title);
    if (!newest) {
      const restore = button("Restore", "tool");
      restore.setAttribute("aria-label", "Restore version " + version.version);
      restore.addEventListener("click", function () { restoreVersion(version.version, restore); });
      head.appendChild(restore);
    }
    li.appendChild(head);
    const action = version.action + (version.restored_from ? " of version " + version.restored_from : "");
    li.appendChild(el("p", "wb-version-meta", when(version.recorded_at) + " · " + version.who + " · " + action));
    const lines = version.out_of_scope_changes;
    const outOfScope = lines.added.map(function (q) { return "added to out_of_scope.txt: “" + q + "”"; })
      .concat(lines.removed.map(function (q) { return "removed from out_of_scope.txt: “" + q + "”"; }));
    if (!version.changes.length && !outOfScope.length) {
      li.appendChild(el("p", "empty", "No entry changed."));
    }
    changeList(li, version.changes.map(changeLine), " entry changes");
    changeList(li, outOfScope, " out-of-scope questions");
    return li;
  }

  function changeList(li, texts, many) {
    if (!texts.length) return;
    const list = el("ul", "wb-version-changes");
    texts.forEach(function (text) { list.appendChild(el("li", null, text)); });
    if (texts.length > 4) {
      const more = el("details");
      more.appendChild(el("summary", null, texts.length + many));
      more.appendChild(list);
      li.appendChild(more);
    } else {
      li.appendChild(list);
    }
  }

  async function loadHistory() {
    try {
      const versions = await admin("GET", "/api/workbench/history?limit=50");
      historyList.replaceChildren.apply(historyList, versions.length
        ? versions.map(function (v, i) { return versionItem(v, i === 0); })
        : [el("li", "empty", "No version recorded yet.")]);
    } catch (err) {
      failed(err);
    }
  }

  async function restoreVersion(number, control) {
    if (!window.confirm("Restore version " + number + "? The playbook becomes what it was then; " +
                        "this is recorded as a new version.")) return;
    control.disabled = true;
    setStatus(statusBox, "Restoring version " + number + " and rebuilding the index…");
    try {
      const result = await admin("POST", "/api/workbench/history/" + number + "/restore");
      setStatus(statusBox, "Restored version " + number + " as version " + result.version.version + ".");
      if (!draft.items.length) setStatus(draftStatus, "");
      await refreshAfterChange();
    } catch (err) {
      control.disabled = false;
      failed(err);
    }
  }

  // ------------------------------------------------------------ start

  function start() {
    tokenForm.hidden = true;
    workbench.hidden = false;
    setStatus(statusBox, "");
    renderDraft();
    search();
    loadHistory();
    if (!started) {
      started = true;
      const from = new URLSearchParams(window.location.search).get("from");
      if (from) newEntry(from.trim());
      else searchInput.focus();
    }
  }

  $("lock").addEventListener("click", adminSession(tokenForm, tokenInput, start, lock));
  $("search-form").addEventListener("submit", function (event) {
    event.preventDefault();
    window.clearTimeout(searchTimer);
    search();
  });
  searchInput.addEventListener("input", scheduleSearch);
  $("new-entry").addEventListener("click", function () { newEntry(""); });
  $("close-editor").addEventListener("click", function () {
    closeEditor();
    $("new-entry").focus();
  });
  editor.addEventListener("submit", addToDraft);
  editor.addEventListener("input", function (event) {
    if (!editing) return;
    if (event.target === fields.id) editing.idTouched = true;
    if (event.target === fields.question && editing.isNew && !editing.idTouched) {
      fields.id.value = slug(fields.question.value);
    }
    scheduleCheck();
  });
  previewButton.addEventListener("click", preview);
  publishButton.addEventListener("click", publish);
  discardButton.addEventListener("click", function () {
    if (!window.confirm("Discard the draft (" + draft.items.length + " entries)?")) return;
    draft = { base_hash: latestHash, items: [] };
    saveDraft();
    renderDraft();
    impactBox.hidden = true;
    setStatus(draftStatus, "Draft discarded.");
  });
  refreshBase.addEventListener("click", rebase);
  $("refresh-history").addEventListener("click", loadHistory);

})();
