// "/" focuses the site-wide search box, unless the person is typing in a field or editor.
const box = document.querySelector("[data-search-box]");
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey || !box) return;
  const target = event.target;
  const typing =
    target instanceof HTMLElement &&
    (target.isContentEditable ||
      ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) ||
      target.closest(".cm-editor"));
  if (typing) return;
  event.preventDefault();
  box.focus();
  box.select();
});
