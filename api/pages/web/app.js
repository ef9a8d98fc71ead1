// The pages' one ES module (bundled by esbuild at set-up into api/pages/static/app.js):
// htmx for partial updates, and the session's CSRF token on every htmx request.
import htmx from "htmx.org";

window.htmx = htmx;

document.addEventListener("htmx:configRequest", (event) => {
  const meta = document.querySelector('meta[name="csrf-token"]');
  if (meta) event.detail.headers["X-CSRF-Token"] = meta.content;
});
