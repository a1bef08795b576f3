// The review page: unlock with the admin token (exchanged for an HttpOnly session cookie that no
// script can read), list the queue, resolve.
"use strict";

(function () {
  const { el, requestJSON, percent } = window.Playbook;
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

  function meta(item, groupKey) {
    const parts = ["asked " + item.count + "×", "last " + item.last_asked_at.replace("T", " ").slice(0, 16) + " UTC"];
    const lines = [el("p", "item-meta", parts.join(" · "))];
    if (item.entry_question) {
      lines.push(el("p", "item-answered", "Answered with: " + item.entry_question + " (" + percent(item.confidence) + ", " + item.band + ")"));
    } else {
      lines.push(el("p", "item-answered", "No confident match (best guess " + percent(item.confidence) + ")"));
    }
    if (item.now_entry_id !== item.entry_id) {  // the playbook changed since it was asked
      lines.push(el("p", "item-now", item.now_question
        ? "Now answers: " + item.now_question + " (" + percent(item.now_confidence) + ")"
        : "Now: no confident match"));
    }
    if (groupKey === "thumbs_down") {
      const text = item.picked_question ? "Agent picked: " + item.picked_question
        : item.none_of_these ? "Agent said: none of these" : "Agent gave a thumbs-down without picking an entry";
      lines.push(el("p", "item-picked", text));
    }
    return lines;
  }

  function itemView(item, groupKey) {
    const li = el("li", "item");
    li.dataset.queryId = String(item.query_id);
    li.appendChild(el("p", "item-question", item.question));
    meta(item, groupKey).forEach(function (line) { li.appendChild(line); });

    const actions = el("div", "item-actions");
    const selectId = "entry-for-" + item.query_id;
    const label = el("label", "item-label", "Add as alternate to");
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
    select.value = item.picked_entry_id || (groupKey === "thumbs_down" ? "" : item.entry_id || "");
    const add = el("button", "primary add", "Add");
    add.type = "button";
    add.disabled = !select.value;
    select.addEventListener("change", function () { add.disabled = !select.value; });
    const dismiss = el("button", "dismiss", "Dismiss");
    dismiss.type = "button";

    add.addEventListener("click", async function () {
      add.disabled = dismiss.disabled = true;
      setStatus("Adding and rebuilding the index…");
      try {
        const result = await admin("POST", "/api/review/" + item.query_id + "/add", { entry_id: select.value });
        setStatus("Added “" + result.phrasing + "” to “" + entryQuestion(result.entry_id) + "”. Index " +
                  result.index.action + ": " + result.index.entries + " entries, " + result.index.vectors + " vectors.");
        await load(false);
      } catch (err) {
        failed(err);
        add.disabled = dismiss.disabled = false;
      }
    });
    dismiss.addEventListener("click", async function () {
      add.disabled = dismiss.disabled = true;
      try {
        await admin("POST", "/api/review/" + item.query_id + "/dismiss");
        setStatus("Dismissed “" + item.question + "”.");
        await load(false);
      } catch (err) {
        failed(err);
        add.disabled = dismiss.disabled = false;
      }
    });
    const field = el("div", "item-field");
    field.append(label, select);
    actions.append(field, add, dismiss);
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
      if (!group.items.length) {
        section.appendChild(el("p", "empty", "Nothing here."));
      } else {
        const list = el("ul", "items");
        group.items.forEach(function (item) { list.appendChild(itemView(item, group.key)); });
        section.appendChild(list);
      }
      return section;
    });
    queue.replaceChildren.apply(queue, sections);
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
      const data = await admin("GET", "/api/review");
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

  tokenForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    const value = tokenInput.value.trim();
    if (!value) return;
    try {
      await requestJSON("POST", "/api/admin/session", { token: value });
    } catch (err) {
      lock(err.status === 401 ? "That token was not accepted." : err.message);
      return;
    }
    load(true);
  });
  document.getElementById("refresh").addEventListener("click", function () { load(true); });
  document.getElementById("lock").addEventListener("click", function () {
    requestJSON("DELETE", "/api/admin/session").catch(function () { /* locked locally anyway */ });
    lock("Locked.");
  });

  // A session from earlier, if any (the cookie itself is invisible to scripts).
  requestJSON("GET", "/api/admin/session").then(function (session) {
    if (session.active) load(true); else tokenInput.focus();
  }, function () { tokenInput.focus(); });
})();
