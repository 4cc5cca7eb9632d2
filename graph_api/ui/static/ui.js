// campus-kg pages: keyboard shortcuts on the steward workbench; nothing else needs script.
"use strict";
document.addEventListener("keydown", (event) => {
  const target = event.target;
  if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT")) {
    return; // typing a reason is not a decision
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const button = document.querySelector(`[data-key="${event.key.toLowerCase()}"]`);
  if (button) {
    event.preventDefault();
    button.click();
  }
});

// "Print" buttons (一表通): a button cannot call print() inline under the pages' CSP.
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) window.print();
});
