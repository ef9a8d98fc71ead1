// Account pages (API keys, webhooks): a "copy" button next to a secret shown once. The
// button is hidden without script (the secret can still be selected and copied by hand).
for (const button of document.querySelectorAll("button[data-copy]")) {
  const source = document.getElementById(button.dataset.copy);
  if (!source || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = button.dataset.copied || "Copied";
    } catch {
      button.textContent = button.dataset.failed || "Copy failed: select the text instead";
    }
  });
}
