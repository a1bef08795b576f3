// The insights page: unlock (the review page's session), pick a period, draw the figures.
"use strict";

(function () {
  const { el, requestJSON, adminSession } = window.Playbook;
  const SVG = "http://www.w3.org/2000/svg";
  const OUTCOMES = [
    ["answered", "Answered"], ["ambiguous", "Flagged ambiguous"], ["refused", "No confident match"]];
  const tokenForm = document.getElementById("token-form");
  const tokenInput = document.getElementById("token");
  const periodForm = document.getElementById("period-form");
  const period = document.getElementById("period");
  const customDates = document.getElementById("custom-dates");
  const statusBox = document.getElementById("insights-status");
  const report = document.getElementById("report");

  function setStatus(text, isError) {
    statusBox.textContent = text;
    statusBox.classList.toggle("status--error", Boolean(isError));
  }

  function pct(value) { return value === null ? "–" : Math.round(value * 100) + "%"; }

  function questions(count) { return count + (count === 1 ? " question" : " questions"); }

  function isoDay(date) { return date.toISOString().slice(0, 10); }

  function query() {
    if (period.value === "custom") {
      const since = document.getElementById("since").value;
      const until = document.getElementById("until").value;
      return "?since=" + encodeURIComponent(since) + "&until=" + encodeURIComponent(until);
    }
    const until = new Date();
    const since = new Date(until.getTime() - (Number(period.value) - 1) * 86400000);
    return "?since=" + isoDay(since) + "&until=" + isoDay(until);
  }

  function tile(label, value, sub) {
    const wrap = el("div", "tile");
    wrap.appendChild(el("dt", null, label));
    const dd = el("dd", null, value);
    if (sub) dd.appendChild(el("span", "sub", sub));
    wrap.appendChild(dd);
    return wrap;
  }

  function tiles(data) {
    const rated = data.up + data.down;
    const interval = data.accuracy_interval;
    document.getElementById("tiles").replaceChildren(
      tile("Questions", String(data.asked), data.since + " – " + data.until),
      tile("Answered", pct(data.shares.answered), questions(data.answered)),
      tile("Flagged ambiguous", pct(data.shares.ambiguous), questions(data.ambiguous)),
      tile("No confident match", pct(data.shares.refused), questions(data.refused)),
      tile("Rated right by agents", pct(data.thumbs_up_rate),
           rated + " rated, " + data.down + " thumbs down"),
      tile("Estimated accuracy", pct(data.estimated_accuracy),
           interval ? "95%: " + pct(interval[0]) + "–" + pct(interval[1]) : "no answers"));
    document.getElementById("estimate-note").textContent = data.estimate_note;
  }

  function svg(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function chart(days) {
    const width = 720, height = 200, left = 34, bottom = 22, top = 8;
    const most = Math.max(1, ...days.map(function (d) { return d.asked; }));
    const step = (width - left) / Math.max(days.length, 1);
    const barWidth = Math.max(2, Math.min(28, step * 0.7));
    const scale = (height - top - bottom) / most;
    const root = svg("svg", { viewBox: "0 0 " + width + " " + height, role: "img",
      "aria-label": days.length + " days; " + days.reduce(function (n, d) { return n + d.asked; }, 0) +
        " questions; the busiest day had " + most });
    [0, most].forEach(function (value) {
      const y = height - bottom - value * scale;
      root.appendChild(svg("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, String(value)));
      root.appendChild(svg("line", { x1: left, x2: width, y1: y, y2: y, stroke: "currentColor", "stroke-opacity": "0.15" }));
    });
    const labelEvery = Math.ceil(days.length / 10);
    days.forEach(function (day, i) {
      const x = left + i * step + (step - barWidth) / 2;
      let y = height - bottom;
      OUTCOMES.forEach(function (pair) {
        const count = day[pair[0]];
        if (!count) return;
        const h = count * scale;
        y -= h;
        const bar = svg("rect", { x: x, y: y, width: barWidth, height: h, class: "bar--" + pair[0] });
        bar.appendChild(svg("title", {}, day.day + ": " + count + " " + pair[1].toLowerCase()));
        root.appendChild(bar);
      });
      if (i % labelEvery === 0) {
        root.appendChild(svg("text", { x: x + barWidth / 2, y: height - 6, "text-anchor": "middle", class: "axis" }, day.day.slice(5)));
      }
    });
    document.getElementById("chart").replaceChildren(root);
    document.getElementById("legend").replaceChildren.apply(
      document.getElementById("legend"), OUTCOMES.map(function (pair) {
        const item = el("span");
        item.appendChild(el("span", "swatch swatch--" + pair[0]));
        item.appendChild(document.createTextNode(pair[1]));
        return item;
      }));
  }

  function row(cells) {
    const tr = el("tr");
    cells.forEach(function (cell, i) { tr.appendChild(el("td", i ? "num" : null, String(cell))); });
    return tr;
  }

  function weeks(days) {
    const byWeek = new Map();
    days.forEach(function (day) {
      const date = new Date(day.day + "T00:00:00Z");
      const monday = isoDay(new Date(date.getTime() - ((date.getUTCDay() + 6) % 7) * 86400000));
      const sum = byWeek.get(monday) || { asked: 0, answered: 0, ambiguous: 0, refused: 0 };
      ["asked", "answered", "ambiguous", "refused"].forEach(function (k) { sum[k] += day[k]; });
      byWeek.set(monday, sum);
    });
    document.querySelector("#weeks tbody").replaceChildren.apply(
      document.querySelector("#weeks tbody"), Array.from(byWeek, function (pair) {
        return row([pair[0], pair[1].asked, pair[1].answered, pair[1].ambiguous, pair[1].refused]);
      }));
  }

  function cards(list) {
    const body = document.querySelector("#cards tbody");
    if (!list.length) {
      const tr = el("tr");
      const td = el("td", null, "No card answered a question in this period.");
      td.colSpan = 5;
      tr.appendChild(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren.apply(body, list.map(function (card) {
      const rated = card.up + card.down;
      return row([card.question, card.answered, rated ? pct(card.down / rated) + " of " + rated : "–",
                  pct(card.mean_confidence), card.last_used]);
    }));
  }

  function items(id, list, empty, render) {
    const box = document.getElementById(id);
    box.replaceChildren.apply(box, list.length ? list.map(render) : [el("li", null, empty)]);
  }

  async function load() {
    setStatus("Loading…");
    try {
      const data = await requestJSON("GET", "/api/insights" + query(), undefined, { "X-Playbook-Admin": "1" });
      tokenForm.hidden = true;
      periodForm.hidden = false;
      report.hidden = false;
      tiles(data);
      chart(data.days);
      weeks(data.days);
      cards(data.cards);
      items("never", data.never_answered, "Every card was used.", function (card) {
        return el("li", null, card.question);
      });
      items("unanswered", data.unanswered, "Nothing: every question got an answer.", function (u) {
        return el("li", null, u.question + " (asked " + u.count + "×)");
      });
      setStatus("");
    } catch (err) {
      if (err.status === 401) {
        lock("");
        setStatus("Unlock with the admin token.", false);
      } else {
        setStatus(err.message, true);
      }
    }
  }

  function lock(message) {
    report.hidden = true;
    periodForm.hidden = true;
    tokenForm.hidden = false;
    tokenInput.focus();
    setStatus(message, Boolean(message));
  }

  adminSession(tokenForm, tokenInput, load, lock);
  period.addEventListener("change", function () {
    customDates.hidden = period.value !== "custom";
    if (period.value !== "custom") load();
  });
  periodForm.addEventListener("submit", function (event) { event.preventDefault(); load(); });

})();
