// The review page: unlock with the admin token (exchanged for an HttpOnly session cookie that no
// script can read), list the queue clustered by meaning, resolve a whole cluster at once (or the
// members left ticked): add them as alternates to an entry, start a new entry, dismiss them, or
// mark them as questions the playbook does not answer.
"use strict";

(function () {
  const { el, requestJSON, percent, adminSession } = window.Playbook;
  const tokenForm = document.getElementById("token-form");
  const tokenInput = document.getElementById("token");
  const toolbar = document.getElementById("review-toolbar");
  const statusBox = document.getElementById("review-status");
  const queue = document.getElementById("queue");
  let entries = [];

  function admin(method, url, body) {
    return requestJSON(method, url, body, { "X-Playbook-Admin": "1" });
  }

  function setStatus(text, isError) {
    statusBox.textContent = text;
    statusBox.classList.toggle("status--error", Boolean(isError));
  }

  function lock(message) {
    queue.replaceChildren();
    toolbar.hidden = true;
    tokenForm.hidden = false;
    tokenInput.value = "";
    tokenInput.focus();
    setStatus(message || "", Boolean(message));
  }

  function entryQuestion(id) {
    const found = entries.find(function (e) { return e.id === id; });
    return found ? found.question : id;
  }

  function plural(n, one, many) { return n === 1 ? one : many; }

  // A cluster is shown as its representative (its most-asked question), with its volume and
  // every member; it is answered "then" and "now" as the representative is.
  function meta(cluster, groupKey) {
    const parts = ["asked " + cluster.count + "×"];
    if (cluster.members.length > 1) parts.push(cluster.members.length + " questions");
    parts.push("last " + cluster.last_asked_at.replace("T", " ").slice(0, 16) + " UTC");
    const lines = [el("p", "item-meta", parts.join(" · "))];
    if (cluster.entry_question) {
      lines.push(el("p", "item-answered", "Answered with: " + cluster.entry_question + " (" + percent(cluster.confidence) + ", " + cluster.band + ")"));
    } else {
      lines.push(el("p", "item-answered", "No confident match (best guess " + percent(cluster.confidence) + ")"));
    }
    lines.push(el("p", "item-now", cluster.now_question
      ? "Now answers: " + cluster.now_question + " (" + percent(cluster.now_confidence) + ")"
      : "Now: no confident match"));
    if (groupKey === "thumbs_down") {
      const text = cluster.picked_question ? "Agent picked: " + cluster.picked_question
        : cluster.none_of_these ? "Agent said: none of these" : "Agent gave a thumbs-down without picking an entry";
      lines.push(el("p", "item-picked", text));
    }
    return lines;
  }

  // Several questions: each with its count and a box, ticked, to leave one out of the action.
  function membersView(cluster, onChange) {
    const boxes = [];
    const group = el("div", "members");
    const titleId = "members-" + cluster.query_id;
    const title = el("p", "item-label", "Questions in this cluster");
    title.id = titleId;
    group.setAttribute("role", "group");
    group.setAttribute("aria-labelledby", titleId);
    const list = el("ul", "phrasings-list");
    cluster.members.forEach(function (member) {
      const row = el("li", "member");
      row.dataset.queryId = String(member.query_id);
      const label = el("label");
      const box = el("input");
      box.type = "checkbox";
      box.checked = true;
      box.value = String(member.query_id);
      box.addEventListener("change", onChange);
      boxes.push(box);
      label.append(box, " ", el("span", "member-question", member.question), " ", el("span", "member-count", "×" + member.count));
      row.appendChild(label);
      list.appendChild(row);
    });
    group.append(title, list);
    return { node: group, boxes: boxes };
  }

  function clusterView(cluster, groupKey) {
    const li = el("li", "item cluster");
    li.dataset.queryId = String(cluster.query_id);
    li.appendChild(el("p", "item-question", cluster.question));
    meta(cluster, groupKey).forEach(function (line) { li.appendChild(line); });
    const several = cluster.members.length > 1;

    const actions = el("div", "item-actions");
    const selectId = "entry-for-" + cluster.query_id;
    const label = el("label", "item-label", several ? "Add as alternates to" : "Add as alternate to");
    label.htmlFor = selectId;
    const select = el("select", "entry-select");
    select.id = selectId;
    const placeholder = el("option", null, "Choose an entry…");
    placeholder.value = "";
    select.appendChild(placeholder);
    entries.forEach(function (entry) {
      const option = el("option", null, entry.question);
      option.value = entry.id;
      select.appendChild(option);
    });
    // A thumbs-down says the answered entry was wrong: only the agent's pick is a safe default.
    select.value = cluster.picked_entry_id ||
      (groupKey === "thumbs_down" ? "" : cluster.now_entry_id || cluster.entry_id || "");
    const add = el("button", "primary add");
    add.type = "button";
    const dismiss = el("button", "dismiss");
    dismiss.type = "button";
    const outOfScope = el("button", "out-of-scope");
    outOfScope.type = "button";
    outOfScope.title = "Write it into out_of_scope.txt: it, and questions close to it, are refused from then on";
    const create = el("a", "new-entry", "New entry");
    create.href = "/workbench?from=" + encodeURIComponent(cluster.question);

    let boxes = [];
    function chosen() {
      if (!several) return [cluster.query_id];
      return boxes.filter(function (b) { return b.checked; }).map(function (b) { return Number(b.value); });
    }
    function refresh() {
      const n = chosen().length;
      const all = n === cluster.members.length;
      add.textContent = !several ? "Add" : all ? "Add all" : "Add " + n + " of " + cluster.members.length;
      dismiss.textContent = !several ? "Dismiss" : all ? "Dismiss all" : "Dismiss " + n + " of " + cluster.members.length;
      outOfScope.textContent = !several || all ? "Not in the playbook" : "Not in the playbook (" + n + " of " + cluster.members.length + ")";
      add.disabled = !select.value || n === 0;
      dismiss.disabled = outOfScope.disabled = n === 0;
    }
    if (several) {
      const members = membersView(cluster, refresh);
      boxes = members.boxes;
      li.appendChild(members.node);
    }
    select.addEventListener("change", refresh);
    refresh();

    async function act(work) {
      add.disabled = dismiss.disabled = outOfScope.disabled = true;
      try {
        await work();
        await load(false);
      } catch (err) {
        failed(err);
        refresh();
      }
    }
    add.addEventListener("click", function () {
      const ids = chosen();
      act(async function () {
        setStatus("Adding and rebuilding the index…");
        const result = await overrulable(function (force) {
          return admin("POST", "/api/review/add", { query_ids: ids, entry_id: select.value, force: force });
        });
        const what = result.added.length === 1 ? "“" + result.added[0].phrasing + "”"
          : result.added.length + " questions";
        setStatus("Added " + what + " to “" + entryQuestion(result.entry_id) + "”. Index " +
                  result.index.action + ": " + result.index.entries + " entries, " + result.index.vectors + " vectors.");
      });
    });
    dismiss.addEventListener("click", function () {
      const ids = chosen();
      act(async function () {
        const result = await admin("POST", "/api/review/dismiss", { query_ids: ids });
        setStatus(ids.length === 1 && !several ? "Dismissed “" + cluster.question + "”."
          : "Dismissed " + ids.length + " " + plural(ids.length, "question", "questions") +
            " (" + result.resolved.length + " " + plural(result.resolved.length, "asking", "askings") + ").");
      });
    });
    outOfScope.addEventListener("click", function () {
      const ids = chosen();
      act(async function () {
        setStatus("Marking out of scope and rebuilding the index…");
        const result = await overrulable(function (force) {
          return admin("POST", "/api/review/out-of-scope", { query_ids: ids, force: force });
        });
        const what = result.lines.length === 1 ? "“" + result.lines[0] + "”"
          : result.lines.length + " questions";
        setStatus("Marked " + what + " as not in the playbook: refused from now on. Index " +
                  result.index.action + ": " + result.index.entries + " entries, " + result.index.vectors + " vectors.");
      });
    });
    const field = el("div", "item-field");
    field.append(label, select);
    actions.append(field, add, create, dismiss, outOfScope);
    li.appendChild(actions);
    return li;
  }

  function render(data) {
    const sections = data.groups.map(function (group) {
      const section = el("section", "group group--" + group.key);
      section.setAttribute("aria-labelledby", "group-" + group.key);
      const heading = el("h2", "group-title");
      heading.id = "group-" + group.key;
      heading.append(el("span", null, group.title), el("span", "count", String(group.count)));
      section.appendChild(heading);
      if (!group.clusters.length) {
        section.appendChild(el("p", "empty", "Nothing here."));
      } else {
        const list = el("ul", "items");
        group.clusters.forEach(function (cluster) { list.appendChild(clusterView(cluster, group.key)); });
        section.appendChild(list);
      }
      return section;
    });
    queue.replaceChildren.apply(queue, sections);
  }

  // A refusal the knowledge manager may overrule (a 409 whose reason ends "(force)") is put to
  // them; only a yes sends it again, forced.
  async function overrulable(send) {
    try {
      return await send(false);
    } catch (err) {
      if (err.status !== 409 || !/\(force\)$/.test(err.message) ||
          !window.confirm(err.message + "\n\nDo it anyway?")) throw err;
      return await send(true);
    }
  }

  function failed(err) {
    if (err.status === 401) {
      lock("The session has ended: unlock again.");
    } else {
      setStatus(err.message, true);
    }
  }

  async function load(announceCount) {
    try {
      if (!entries.length) entries = await requestJSON("GET", "/api/entries");
      const data = await admin("GET", "/api/review/clusters");
      tokenForm.hidden = true;
      toolbar.hidden = false;
      render(data);
      if (announceCount) {
        setStatus(data.total ? data.total + " questions waiting for review." : "All clear: nothing waiting for review.");
      }
    } catch (err) {
      failed(err);
    }
  }

  const close = adminSession(tokenForm, tokenInput, function () { load(true); }, lock);
  document.getElementById("refresh").addEventListener("click", function () { load(true); });
  document.getElementById("lock").addEventListener("click", close);
})();
