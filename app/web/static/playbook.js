// The playbook browser, on the chat page: a dialog to search every card and open one, with its
// answer, macro (Copy, or Alt+C), conditions, phrasings and tags. Opened by "Browse playbook" or by the address /#playbook. The
// search runs in the browser over GET /api/entries.
"use strict";

(function () {
  const P = window.Playbook;
  const { el } = P;
  const dialog = document.getElementById("playbook-browser");
  const openButton = document.getElementById("open-browser");
  const closeButton = document.getElementById("browser-close");
  const search = document.getElementById("browser-search");
  const count = document.getElementById("browser-count");
  const list = document.getElementById("browser-list");
  const HASH = "#playbook";
  const cards = new Map();  // entry id -> its <li>, kept so an opened card stays open
  let entries = null;

  function entryView(entry) {
    const body = el("div", "browser-body");
    body.append(...P.entryBody(entry));
    if (entry.applies_when && entry.applies_when.length) body.appendChild(P.appliesWhen(entry.applies_when));
    if (entry.alternates.length) {
      const phrasings = el("details", "phrasings");
      phrasings.appendChild(el("summary", "phrasings-summary",
        entry.alternates.length + (entry.alternates.length === 1 ? " other phrasing" : " other phrasings")));
      const items = el("ul", "phrasings-list");
      entry.alternates.forEach(function (text) { items.appendChild(el("li", null, text)); });
      phrasings.appendChild(items);
      body.appendChild(phrasings);
    }
    if (entry.tags.length) body.appendChild(P.tagChips(entry.tags));
    if (entry.source) {
      body.appendChild(el("p", "browser-source",
        "Source: " + entry.source.file + ", line " + entry.source.line));
    }
    return body;
  }

  // Alt+C in the dialog copies from the card opened last.
  function markShortcutTarget(details) {
    list.querySelectorAll(".copy[aria-keyshortcuts]").forEach(function (button) {
      button.removeAttribute("aria-keyshortcuts");
    });
    const button = details ? details.querySelector(".copy") : null;
    if (button) button.setAttribute("aria-keyshortcuts", "Alt+C");
  }

  function card(entry) {
    const item = el("li", "browser-item");
    const details = el("details", "browser-entry");
    details.dataset.entryId = entry.id;
    details.appendChild(el("summary", "browser-question", entry.question));
    details.addEventListener("toggle", function () {
      if (!details.open) {
        if (details.querySelector(".copy[aria-keyshortcuts]")) {
          const open = list.querySelectorAll(".browser-entry[open]");
          markShortcutTarget(open.length ? open[open.length - 1] : null);
        }
        return;
      }
      if (!details.querySelector(".browser-body")) details.appendChild(entryView(entry));
      markShortcutTarget(details);
      details.scrollIntoView({ block: "nearest" });
    });
    item.appendChild(details);
    return item;
  }

  function show() {
    const query = search.value;
    const found = P.searchEntries(entries, query);
    list.replaceChildren(...found.map(function (entry) {
      if (!cards.has(entry.id)) cards.set(entry.id, card(entry));
      return cards.get(entry.id);
    }));
    count.textContent = !query.trim() ? entries.length + " cards."
      : found.length === 0 ? "No card has all these words."
      : found.length + (found.length === 1 ? " card matches." : " cards match.");
  }

  function open() {
    if (!dialog.open) dialog.showModal();
    search.focus();
    if (entries) return;
    count.textContent = "Loading…";
    P.loadEntries().then(function (loaded) {
      entries = loaded;
      show();
    }, function (err) {
      count.textContent = "Couldn't load the playbook: " + err.message;
    });
  }

  openButton.addEventListener("click", open);
  closeButton.addEventListener("click", function () { dialog.close(); });
  dialog.addEventListener("close", function () {
    if (window.location.hash === HASH) {
      window.history.replaceState(null, "", window.location.pathname + window.location.search);
    }
  });
  search.addEventListener("input", function () { if (entries) show(); });
  window.addEventListener("hashchange", function () { if (window.location.hash === HASH) open(); });
  if (window.location.hash === HASH) open();
})();
