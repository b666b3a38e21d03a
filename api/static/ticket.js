// The ticket page: the call's audio and dialogue, edit in place, approve / reject, keyboard shortcuts.
"use strict";

(() => {
  const data = JSON.parse(document.getElementById("ticket-data").textContent);
  const player = document.getElementById("player");
  const lines = Array.from(document.querySelectorAll("#dialogue .line"));
  const flash = document.getElementById("flash");
  let version = data.version;
  let busy = false;
  let saving = Promise.resolve();

  function say(text, kind) {
    if (!flash) return;
    flash.textContent = text;
    flash.className = "flash " + (kind || "");
  }

  // ---- audio and dialogue
  function playFrom(seconds) {
    if (!player || !isFinite(seconds)) return;
    const start = () => {
      player.currentTime = seconds;
      const playing = player.play();
      if (playing && playing.catch) playing.catch(() => {});
    };
    if (player.readyState >= 1) start();
    else player.addEventListener("loadedmetadata", start, {once: true});
  }

  lines.forEach((line) => {
    line.addEventListener("click", () => playFrom(parseFloat(line.dataset.start)));
  });

  let lastActive = null;
  if (player) {
    player.addEventListener("timeupdate", () => {
      const t = player.currentTime;
      let active = null;
      for (const line of lines) {
        if (parseFloat(line.dataset.start) <= t + 0.05) active = line; else break;
      }
      if (active !== lastActive) {
        if (lastActive) lastActive.classList.remove("playing");
        if (active) {
          active.classList.add("playing");
          if (!player.paused) active.scrollIntoView({block: "nearest"});
        }
        lastActive = active;
      }
    });
  }

  // ---- evidence: a field's spans light up in the dialogue while the field has focus or the mouse
  function showEvidence(field, on) {
    document.querySelectorAll("mark.ev").forEach((mark) => {
      const fields = (mark.dataset.fields || "").split(" ");
      mark.classList.toggle("focus", on && fields.includes(field));
    });
    if (on) {
      const first = Array.from(document.querySelectorAll("mark.ev.focus"))[0];
      if (first) first.scrollIntoView({block: "nearest"});
    }
  }
  document.querySelectorAll(".field").forEach((box) => {
    const name = box.dataset.field;
    box.addEventListener("mouseenter", () => showEvidence(name, true));
    box.addEventListener("mouseleave", () => showEvidence(name, box.contains(document.activeElement)));
    box.addEventListener("focusin", () => showEvidence(name, true));
    box.addEventListener("focusout", () => showEvidence(name, false));
  });
  document.querySelectorAll(".ev-chip").forEach((chip) => {
    chip.addEventListener("click", () => {
      const start = parseFloat(chip.dataset.start);
      if (isFinite(start)) playFrom(start);
      showEvidence(chip.dataset.field, true);
    });
  });
  document.querySelectorAll("mark.ev").forEach((mark) => {
    mark.addEventListener("mouseenter", () => {
      (mark.dataset.fields || "").split(" ").forEach((f) => {
        const box = document.querySelector('.field[data-field="' + f + '"]');
        if (box) box.classList.add("evidence-hover");
      });
    });
    mark.addEventListener("mouseleave", () => {
      document.querySelectorAll(".field.evidence-hover").forEach((b) => b.classList.remove("evidence-hover"));
    });
  });

  // ---- edit in place: each change is saved on its own, in order, against the version shown
  function valueOf(box) {
    const name = box.dataset.field;
    const editor = box.querySelector("[data-kind]");
    const kind = editor.dataset.kind;
    if (kind === "checks") {
      return Array.from(box.querySelectorAll("input[type=checkbox]:checked")).map((c) => c.value);
    }
    if (kind === "amounts") {
      const text = editor.value.trim();
      if (!text) return [];
      return text.split(/[,，\s]+/).filter(Boolean).map((v) => (isNaN(Number(v)) ? v : Number(v)));
    }
    if (kind === "datetime") return editor.value || null;
    const text = editor.value;
    return name === "summary" ? text.replace(/\s*\n\s*/g, " ") : text;
  }

  function applyTicket(ticket) {
    version = ticket.version;
    const v = document.getElementById("ticket-version");
    if (v) v.textContent = String(version);
    // derived fields (due time, department) may have moved with the edit
    for (const name of ["department", "summary", "district", "urgency", "category"]) {
      const editor = document.getElementById("f-" + name);
      if (editor && document.activeElement !== editor && ticket[name] !== undefined && ticket[name] !== null) {
        editor.value = ticket[name];
      }
    }
    const due = document.getElementById("f-due_at");
    if (due && document.activeElement !== due && ticket.due_at) {
      due.value = localInput(ticket.due_at);
      const shown = document.getElementById("due-display");
      if (shown) shown.textContent = due.value.replace("T", " ");
    }
    document.querySelectorAll(".field").forEach((box) => {
      box.classList.toggle("needs-review", ticket.needs_review.includes(box.dataset.field));
    });
  }

  // ISO time with offset → the hotline's wall clock as the datetime-local input wants it
  function localInput(iso) {
    const zone = data.zone || "Asia/Shanghai";
    const parts = new Intl.DateTimeFormat("en-CA", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      hourCycle: "h23",
    }).formatToParts(new Date(iso));
    const get = (type) => (parts.find((p) => p.type === type) || {}).value;
    return `${get("year")}-${get("month")}-${get("day")}T${get("hour")}:${get("minute")}`;
  }

  function save(box) {
    const name = box.dataset.field;
    const error = box.querySelector(".field-error");
    const value = valueOf(box);
    saving = saving.then(async () => {
      box.classList.add("saving");
      say(data.labels.saving);
      const result = await Review.api("PATCH", "/tickets/" + data.id, {[name]: value}, {"If-Match": String(version)});
      box.classList.remove("saving");
      if (result.ok) {
        error.textContent = "";
        box.classList.remove("invalid");
        box.classList.add("edited");
        applyTicket(result.body);
        say(data.labels.saved, "ok");
      } else {
        error.textContent = Review.errorMessage(result);
        box.classList.add("invalid");
        say(Review.errorMessage(result), "error");
      }
      return result.ok;
    });
    return saving;
  }

  document.querySelectorAll(".field").forEach((box) => {
    const editor = box.querySelector("[data-kind]");
    if (!editor) return;
    const kind = editor.dataset.kind;
    if (kind === "checks") {
      box.querySelectorAll("input[type=checkbox]").forEach((c) => c.addEventListener("change", () => save(box)));
    } else {
      editor.addEventListener("change", () => save(box));
      if (editor.tagName.toLowerCase() !== "textarea") {
        editor.addEventListener("keydown", (event) => {
          if (event.key === "Enter") { event.preventDefault(); editor.blur(); }
          if (event.key === "Escape") { editor.blur(); }
        });
      }
    }
  });

  // ---- approve / reject
  function go(id) {
    window.location.href = id ? "/review/tickets/" + id : "/review";
  }

  async function approve() {
    if (busy || data.status !== "needs_review") return;
    busy = true;
    if (document.activeElement && document.activeElement.blur) document.activeElement.blur();
    const edits = await saving;  // let a pending edit land first
    if (edits === false) { busy = false; return; }
    const result = await Review.api("POST", "/tickets/" + data.id + "/approve", {version: version});
    if (!result.ok) {
      say(Review.errorMessage(result), "error");
      busy = false;
      return;
    }
    data.status = result.body.status;
    document.body.classList.add("approved");
    say(data.next ? data.labels.approved_next : data.labels.done_queue, "ok");
    setTimeout(() => go(data.next), 400);
  }

  const dialog = document.getElementById("reject-dialog");
  function openReject() {
    if (busy || data.status !== "needs_review" || !dialog) return;
    dialog.showModal();
    document.getElementById("reject-reason").focus();
  }
  async function reject(event) {
    event.preventDefault();
    const reason = document.getElementById("reject-reason").value.trim();
    const error = document.getElementById("reject-error");
    if (!reason) { error.textContent = data.labels.reject_reason_needed; return; }
    busy = true;
    await saving;
    const result = await Review.api("POST", "/tickets/" + data.id + "/reject", {reason: reason, version: version});
    busy = false;
    if (!result.ok) { error.textContent = Review.errorMessage(result); return; }
    dialog.close();
    data.status = result.body.status;
    go(data.next);
  }
  if (dialog) {
    document.getElementById("reject-form").addEventListener("submit", reject);
    document.getElementById("reject-cancel").addEventListener("click", () => dialog.close());
  }
  const approveButton = document.getElementById("approve-button");
  if (approveButton) approveButton.addEventListener("click", approve);
  const rejectButton = document.getElementById("reject-button");
  if (rejectButton) rejectButton.addEventListener("click", openReject);

  // ---- dispatch: the latest hand-off onward; while it is queued or pending, follow it until sent or failed
  const dispatchBox = document.getElementById("dispatch-state");

  function renderDispatch(d, ticketStatus) {
    const state = d ? d.status : (ticketStatus === "approved" ? "queued" : "");
    if (!dispatchBox || !state) return state;
    const labels = data.labels;
    const add = (tag, className, text) => {
      const el = document.createElement(tag);
      if (className) el.className = className;
      el.textContent = text;  // never markup: the reason and the link come from the receiving system
      dispatchBox.append(el, " ");
      return el;
    };
    dispatchBox.replaceChildren();
    dispatchBox.className = "dispatch dispatch-" + state;
    dispatchBox.dataset.status = state;
    add("span", "dispatch-label", labels.dispatch + ":");
    add("span", "dispatch-status", (state === "sent" ? "✓ " : state === "failed" ? "✗ " : "") + labels["dispatch_" + state]);
    if (!d) return state;
    if (state === "sent") {
      const link = /^https?:\/\//i.test(d.external_url || "") ? d.external_url : null;
      if (link) {
        const a = add("a", "", d.external_ref || link);
        Object.assign(a, {id: "dispatch-link", href: link, target: "_blank", rel: "noopener noreferrer"});
      } else if (d.external_ref) {
        add("span", "", d.external_ref).id = "dispatch-ref";
      }
    }
    add("span", "dispatch-meta", "· " + d.connector + " v" + d.version + " · " +
        labels.dispatch_attempts.replace("{n}", String(d.attempts)));
    if (d.last_error && state !== "sent") {
      const why = state === "failed" ? labels.dispatch_reason : labels.dispatch_last_error;
      add("span", "dispatch-error", "· " + why + ": " + d.last_error).id = "dispatch-error";
    }
    return state;
  }

  if (dispatchBox && ["queued", "pending"].includes(dispatchBox.dataset.status)) {
    const since = Date.now();
    const follow = async () => {
      if (!document.hidden) {
        const result = await Review.api("GET", "/tickets/" + data.id);
        if (result.ok) {
          const state = renderDispatch(result.body.dispatch, result.body.status);
          const shown = document.getElementById("ticket-status");
          if (shown && result.body.status === "dispatched") {
            shown.textContent = data.labels.status_dispatched;
            shown.className = "status status-dispatched";
          }
          if (state === "sent" || state === "failed") return;
        }
      }
      setTimeout(follow, Date.now() - since < 60_000 ? 2000 : 15_000);  // retries may be minutes apart
    };
    setTimeout(follow, 2000);
  }

  // ---- keyboard
  document.addEventListener("keydown", (event) => {
    if (Review.typing(event) || (dialog && dialog.open)) return;
    switch (event.key) {
      case "a": event.preventDefault(); approve(); break;
      case "r": event.preventDefault(); openReject(); break;
      case "j": if (data.next) { event.preventDefault(); go(data.next); } break;
      case "k": if (data.prev) { event.preventDefault(); go(data.prev); } break;
      case " ":
        if (player && !(event.target && event.target.tagName === "BUTTON")) {
          event.preventDefault();
          if (player.paused) player.play().catch(() => {}); else player.pause();
        }
        break;
      case "Escape": if (document.activeElement) document.activeElement.blur(); break;
      default: break;
    }
  });
})();
