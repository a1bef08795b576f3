// Shared helpers. DOM is built with createElement/textContent only: data never becomes markup.
"use strict";

window.Playbook = (function () {
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  class RequestError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  async function requestJSON(method, url, body, headers) {
    const init = { method: method, headers: Object.assign({ Accept: "application/json" }, headers || {}) };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch (err) {
      throw new RequestError("Can't reach the assistant. Check that the server is running, then try again.", 0);
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : "the server answered " + response.status;
      throw new RequestError(detail, response.status);
    }
    return data;
  }

  function percent(confidence) {
    return Math.round(confidence * 100) + "%";
  }

  // Screen-reader announcements through the page's live region, when it has one (an open modal
  // dialog has its own: the page behind it is inert, and so is its live region).
  function announce(text) {
    const announcer = document.querySelector("dialog[open] .announcer") || document.getElementById("announcer");
    if (!announcer) return;
    announcer.textContent = "";
    // A fresh text node after a tick makes screen readers announce even a repeated message.
    window.setTimeout(function () { announcer.textContent = text; }, 50);
  }

  // ------------------------------------------------------------ copying

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return legacyCopy(text); });
    }
    return legacyCopy(text);
  }

  function legacyCopy(text) {
    return new Promise(function (resolve, reject) {
      const area = el("textarea", "offscreen");
      area.value = text;
      area.setAttribute("readonly", "");
      document.body.appendChild(area);
      area.select();
      const ok = document.execCommand("copy");
      area.remove();
      if (ok) resolve(); else reject(new Error("copy failed"));
    });
  }

  // A Copy button for a macro (`what` = "macro") or, on cards without one, the answer.
  function copyButton(text, what, className) {
    const button = el("button", "copy " + (className || ""), "Copy");
    button.type = "button";
    button.setAttribute("aria-label", "Copy " + what);
    button.addEventListener("click", function () {
      copyText(text).then(function () {
        button.textContent = "Copied";
        button.classList.add("copied");
        announce(what === "macro" ? "Macro copied" : "Answer copied");
        window.setTimeout(function () {
          button.textContent = "Copy";
          button.classList.remove("copied");
        }, 2500);
      }, function () {
        button.textContent = "Select and copy";
      });
    });
    return button;
  }

  // ------------------------------------------------------------ a card's body

  function macroBlock(macro) {
    const block = el("div", "macro");
    const head = el("div", "macro-head");
    head.append(el("span", "kicker", "Macro"), copyButton(macro, "macro"));
    block.append(head, el("code", "macro-text", macro));
    return block;
  }

  // The answer, and the macro to send. An answer that is just the macro ("#SD - Too Late to
  // Cancel") is shown once, as the macro; an answer without a macro gets its own Copy button.
  function entryBody(entry) {
    const nodes = [];
    if (!entry.macro) {
      const row = el("div", "policy-row");
      row.append(el("p", "policy", entry.answer), copyButton(entry.answer, "answer", "copy--plain"));
      nodes.push(row);
      return nodes;
    }
    if (entry.answer !== entry.macro) nodes.push(el("p", "policy", entry.answer));
    nodes.push(macroBlock(entry.macro));
    return nodes;
  }

  function tagChips(tags) {
    const list = el("ul", "chips");
    list.setAttribute("aria-label", "Tags");
    tags.forEach(function (tag) { list.appendChild(el("li", "chip", tag)); });
    return list;
  }

  // "Applies when: vendor is Best Buy": the card's conditions, so the agent can check them.
  function appliesWhen(conditions) {
    return el("p", "applies-when", "Applies when: " + conditions.join("; "));
  }

  // ------------------------------------------------------------ every entry, for search

  let entriesPromise = null;

  // GET /api/entries once per page; a failed load is retried on the next call.
  function loadEntries() {
    if (!entriesPromise) {
      entriesPromise = requestJSON("GET", "/api/entries").catch(function (err) {
        entriesPromise = null;
        throw err;
      });
    }
    return entriesPromise;
  }

  function fold(text) {
    return String(text).normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  // Entries holding every typed word (in the question, phrasings, answer, macro or tags), those
  // with every word in the question first, then in playbook order. Runs in the browser: what
  // the agent types here is never sent.
  function searchEntries(entries, query, limit) {
    const words = fold(query).split(/\s+/).filter(Boolean);
    const ranked = [];
    entries.forEach(function (entry, order) {
      const question = fold(entry.question);
      const all = [question, fold(entry.alternates.join("\n")), fold(entry.answer),
                   fold(entry.macro || ""), fold(entry.tags.join(" ")), fold(entry.id)].join("\n");
      if (!words.every(function (w) { return all.includes(w); })) return;
      const inQuestion = words.every(function (w) { return question.includes(w); });
      ranked.push({ entry: entry, rank: inQuestion ? 0 : 1, order: order });
    });
    ranked.sort(function (a, b) { return a.rank - b.rank || a.order - b.order; });
    const found = ranked.map(function (r) { return r.entry; });
    return limit ? found.slice(0, limit) : found;
  }

  // The admin pages' session: the token is traded once for an HttpOnly cookie that no script
  // can read. `open()` runs while a session is live; `lock(message)` shows the token form.
  // Returns what ends the session.
  function adminSession(form, input, open, lock) {
    let unlocking = false;
    form.addEventListener("submit", async function (event) {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) return;
      unlocking = true;
      try {
        await requestJSON("POST", "/api/admin/session", { token: value });
      } catch (err) {
        lock(err.status === 401 ? "That token was not accepted." : err.message);
        return;
      }
      input.value = "";
      open();
    });
    // A session from earlier, if any (the cookie itself is invisible to scripts). Its answer can
    // come after the user has typed or sent a token: then it neither empties the field nor
    // locks over the session being opened.
    requestJSON("GET", "/api/admin/session").then(function (session) {
      if (unlocking) return;
      if (session.active) open(); else if (!input.value) lock("");
    }, function (err) { if (!unlocking) lock(err.message); });
    return function close() {
      requestJSON("DELETE", "/api/admin/session").catch(function () { /* locked locally anyway */ });
      lock("Locked.");
    };
  }

  return {
    el: el, requestJSON: requestJSON, RequestError: RequestError, percent: percent,
    announce: announce, copyText: copyText, copyButton: copyButton, macroBlock: macroBlock,
    entryBody: entryBody, tagChips: tagChips, appliesWhen: appliesWhen,
    loadEntries: loadEntries, searchEntries: searchEntries, adminSession: adminSession,
  };
})();
