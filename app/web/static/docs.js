// The API docs: Swagger UI from the app's own vendored copy (static/vendor/swagger-ui), no CDN.
(function () {
  "use strict";
  const root = document.getElementById("swagger-ui");
  window.SwaggerUIBundle({ url: root.dataset.specUrl, domNode: root, deepLinking: true });
})();
