// Progressive enhancement for the server-rendered pages: every page works without this file.
// - htmx (from npm) for live list filtering and inline stage changes;
// - the CSRF token from <meta name="csrf-token"> on every non-GET request htmx or we send;
// - drag-and-drop of deal cards on the kanban board (a stage <select> stays as the fallback).
import htmx from "htmx.org";

window.htmx = htmx;
document.documentElement.classList.add("js");

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") : "";
}

document.addEventListener("htmx:configRequest", (event) => {
  if (event.detail.verb !== "get") {
    event.detail.headers["X-CSRFToken"] = csrfToken();
    return;
  }
  // Filter forms send only the filters in use, so the pushed URL stays short and shareable.
  const params = event.detail.parameters;
  for (const key of Object.keys(params)) {
    if (params[key] === "") delete params[key];
  }
});

// Selects marked data-autosubmit submit their form when changed (the button is hidden by CSS).
document.addEventListener("change", (event) => {
  const select = event.target.closest("select[data-autosubmit]");
  if (select && select.form && !select.form.hasAttribute("hx-post")) {
    select.form.requestSubmit();
  }
});

// Forms with data-confirm ask before submitting (the server-side confirmation page remains).
document.addEventListener("submit", (event) => {
  const message = event.target.getAttribute && event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// --- kanban -------------------------------------------------------------------------------

function showBoardError(board, message) {
  const box = board.querySelector("[data-board-error]") || document.querySelector("[data-board-error]");
  if (box) {
    box.textContent = message;
    box.hidden = false;
  } else {
    window.alert(message);
  }
}

function refreshBoard() {
  htmx.ajax("GET", window.location.href, { target: "#board", select: "#board", swap: "outerHTML" });
}

async function moveCard(board, card, list) {
  const stage = list.getAttribute("data-drop-stage");
  if (!stage || card.getAttribute("data-stage") === stage) {
    return;
  }
  const origin = card.parentElement;
  const next = card.nextElementSibling;
  list.prepend(card);
  card.classList.add("is-saving");
  try {
    const response = await fetch(card.getAttribute("data-stage-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "X-CSRFToken": csrfToken(),
        Accept: "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ stage }),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error((data.error && data.error.message) || response.statusText);
    }
    refreshBoard();
  } catch (err) {
    origin.insertBefore(card, next);
    card.classList.remove("is-saving");
    showBoardError(board, err.message || String(err));
  }
}

document.addEventListener("dragstart", (event) => {
  const card = event.target.closest && event.target.closest(".kanban-card[draggable]");
  if (!card) return;
  event.dataTransfer.effectAllowed = "move";
  event.dataTransfer.setData("text/plain", card.getAttribute("data-deal-id"));
  card.classList.add("is-dragging");
});

document.addEventListener("dragend", (event) => {
  const card = event.target.closest && event.target.closest(".kanban-card");
  if (card) card.classList.remove("is-dragging");
  document.querySelectorAll(".kanban-cards.is-over").forEach((el) => el.classList.remove("is-over"));
});

document.addEventListener("dragover", (event) => {
  const list = event.target.closest && event.target.closest(".kanban-cards[data-drop-stage]");
  if (!list) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "move";
  list.classList.add("is-over");
});

document.addEventListener("dragleave", (event) => {
  const list = event.target.closest && event.target.closest(".kanban-cards[data-drop-stage]");
  if (list && !list.contains(event.relatedTarget)) list.classList.remove("is-over");
});

document.addEventListener("drop", (event) => {
  const list = event.target.closest && event.target.closest(".kanban-cards[data-drop-stage]");
  if (!list) return;
  event.preventDefault();
  list.classList.remove("is-over");
  const board = list.closest("#board");
  const id = event.dataTransfer.getData("text/plain");
  const card = board && board.querySelector(`.kanban-card[data-deal-id="${CSS.escape(id)}"]`);
  if (card) moveCard(board, card, list);
});
