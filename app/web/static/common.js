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

  return { el: el, requestJSON: requestJSON, RequestError: RequestError, percent: percent };
})();
