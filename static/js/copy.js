// Copy buttons for readonly command/URL boxes (input.clone-url). Progressive
// enhancement: without JavaScript the text sits in a readonly input to select by
// hand, and no button is rendered.
for (const input of document.querySelectorAll("input.clone-url")) {
  input.addEventListener("focus", () => input.select());
  if (!navigator.clipboard) continue;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button button-small button-secondary";
  button.textContent = "Copy";
  button.setAttribute("aria-label", "Copy to the clipboard");
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(input.value.trim());
      button.textContent = "Copied";
    } catch {
      input.select();
      button.textContent = "Press Ctrl+C";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 2000);
  });
  input.after(button);
}
