// The redaction editor (templates/staff/disclosure_redact.html): boxes drawn over the player's
// video, in the picture's own pixels, each with keyframes between which it moves in a straight
// line (the rule of evidence.redaction.Box.rect_at), an in and an out point and a mode; muted
// audio ranges; face proposals to accept or reject; a tracker and a preview from the server.
// It fills the form's `boxes` and `mutes` fields, so the server's path is the one a person typing
// the JSON takes; without this script those fields are shown and typed into instead.
const MODES = { black: "Blacked out", pixelate: "Pixelated", blur: "Blurred" };
const MIN_SIZE = 4; // pixels of the picture: a smaller drag is a click, not a box
const HANDLES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];
const ROW = 22; // pixels: one row of the timeline's lanes

function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}

function seconds(t) {
  return `${t.toFixed(2)} s`;
}

function csrfToken() {
  const field = document.querySelector("input[name=csrfmiddlewaretoken]");
  return field ? field.value : "";
}

// Typing in a field of the page is never taken for a shortcut.
function typing(target) {
  if (target.isContentEditable) return true;
  if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
  return target.tagName === "INPUT" && target.type !== "range";
}

// Where a box is at time t: (x, y, w, h), or null outside [start, end). Between two keyframes a
// straight line, rounded outwards; before the first and after the last, where they put it.
export function rectAt(box, t) {
  if (!(box.start <= t && t < box.end)) return null;
  const k = box.keyframes;
  if (t <= k[0].t) return { x: k[0].x, y: k[0].y, w: k[0].w, h: k[0].h };
  const last = k[k.length - 1];
  if (t >= last.t) return { x: last.x, y: last.y, w: last.w, h: last.h };
  let i = 1;
  while (k[i].t <= t) i += 1;
  const a = k[i - 1];
  const b = k[i];
  const f = (t - a.t) / (b.t - a.t);
  const left = a.x + (b.x - a.x) * f;
  const top = a.y + (b.y - a.y) * f;
  const right = a.x + a.w + (b.x + b.w - a.x - a.w) * f;
  const bottom = a.y + a.h + (b.y + b.h - a.y - a.h) * f;
  const x = Math.floor(left);
  const y = Math.floor(top);
  return { x, y, w: Math.ceil(right) - x, h: Math.ceil(bottom) - y };
}

// A box as the JSON field gives it: the keyframe form, or the one-place form of older proposals.
function normalise(raw) {
  if (!raw || typeof raw !== "object") return null;
  const start = Number(raw.start);
  const end = Number(raw.end);
  let keyframes = Array.isArray(raw.keyframes)
    ? raw.keyframes
    : [{ t: start, x: raw.x, y: raw.y, w: raw.w, h: raw.h }];
  keyframes = keyframes
    .map((k) => ({ t: Number(k.t), x: Number(k.x), y: Number(k.y), w: Number(k.w), h: Number(k.h) }))
    .filter((k) => [k.t, k.x, k.y, k.w, k.h].every(Number.isFinite))
    .sort((a, b) => a.t - b.t);
  if (!keyframes.length || !Number.isFinite(start) || !Number.isFinite(end)) return null;
  return { start, end, mode: MODES[raw.mode] ? raw.mode : "black", keyframes };
}

function setUp(editor) {
  const root = editor.querySelector("[data-bwv-player]");
  const video = root.querySelector("video");
  const stage = root.querySelector(".bwv-player__stage");
  const form = document.getElementById("redact-form");
  const boxesField = form.querySelector("[name=boxes]");
  const mutesField = form.querySelector("[name=mutes]");
  const width = parseInt(editor.dataset.width, 10) || video.videoWidth || 0;
  const height = parseInt(editor.dataset.height, 10) || video.videoHeight || 0;
  const fps = parseFloat(editor.dataset.fps) || 25;
  const status = editor.querySelector("[data-status]");
  const modeSelect = editor.querySelector("#redact-mode");
  const muteButton = editor.querySelector("[data-mute-button]");
  const lists = {
    boxes: editor.querySelector("[data-box-list]"),
    mutes: editor.querySelector("[data-mute-list]"),
    proposals: editor.querySelector("[data-proposal-list]"),
  };
  const lanes = {
    boxes: editor.querySelector("[data-box-lane]"),
    mutes: editor.querySelector("[data-mute-lane]"),
  };
  const playhead = editor.querySelector("[data-playhead]");
  const preview = editor.querySelector("[data-preview]");

  let boxes = [];
  let mutes = [];
  let proposals = [];
  let selected = -1;
  let muteStart = null;
  let drag = null;

  const duration = () =>
    Number.isFinite(video.duration) && video.duration > 0
      ? video.duration
      : parseFloat(editor.dataset.duration) || 0;
  const now = () => Math.round(video.currentTime * 1000) / 1000;

  // The drawing layer lies over the picture itself (not the letterbox around it); its boxes are
  // placed in percent of the picture, so the browser scales them with the video.
  const layer = document.createElement("div");
  layer.className = "bwv-redact__layer";
  layer.tabIndex = 0;
  layer.setAttribute("role", "application");
  layer.setAttribute("aria-roledescription", "drawing area");
  layer.setAttribute(
    "aria-label",
    "Redaction boxes over the picture: drag to draw a box, N for a new box, arrows to move the selected one, Shift and arrows to resize",
  );
  layer.setAttribute("aria-describedby", "redact-layer-state");
  const layerState = document.createElement("span");
  layerState.id = "redact-layer-state";
  layerState.className = "govuk-visually-hidden";
  stage.classList.add("bwv-redact__stage");
  stage.append(layer, layerState);

  function fitLayer() {
    const cw = video.clientWidth;
    const ch = video.clientHeight;
    const vw = video.videoWidth || width;
    const vh = video.videoHeight || height;
    if (!cw || !ch || !vw || !vh) return;
    const scale = Math.min(cw / vw, ch / vh);
    const w = vw * scale;
    const h = vh * scale;
    layer.style.left = `${video.offsetLeft + (cw - w) / 2}px`;
    layer.style.top = `${video.offsetTop + (ch - h) / 2}px`;
    layer.style.width = `${w}px`;
    layer.style.height = `${h}px`;
  }

  // Display pixels of the layer to pixels of the picture.
  function toPicture(event) {
    const r = layer.getBoundingClientRect();
    return {
      x: clamp(((event.clientX - r.left) / r.width) * width, 0, width),
      y: clamp(((event.clientY - r.top) / r.height) * height, 0, height),
    };
  }

  function inside(rect) {
    const w = clamp(Math.round(rect.w), 1, width);
    const h = clamp(Math.round(rect.h), 1, height);
    return {
      x: clamp(Math.round(rect.x), 0, width - w),
      y: clamp(Math.round(rect.y), 0, height - h),
      w,
      h,
    };
  }

  function say(message) {
    status.textContent = message;
  }

  // The place of a box at time t becomes a keyframe: a keyframe within half a frame is replaced.
  function setKeyframe(box, t, rect) {
    const place = inside(rect);
    const near = box.keyframes.findIndex((k) => Math.abs(k.t - t) < 0.5 / fps);
    const keyframe = { t, ...place };
    if (near >= 0) box.keyframes[near] = keyframe;
    else {
      box.keyframes.push(keyframe);
      box.keyframes.sort((a, b) => a.t - b.t);
    }
  }

  function save() {
    boxesField.value = JSON.stringify(
      boxes.map((b) => ({ start: b.start, end: b.end, mode: b.mode, keyframes: b.keyframes })),
    );
    mutesField.value = JSON.stringify(mutes);
  }

  function changed() {
    save();
    render();
  }

  function place(element, rect) {
    element.style.left = `${(rect.x / width) * 100}%`;
    element.style.top = `${(rect.y / height) * 100}%`;
    element.style.width = `${(rect.w / width) * 100}%`;
    element.style.height = `${(rect.h / height) * 100}%`;
  }

  function label(box, index) {
    const kf = box.keyframes.length;
    return `Box ${index + 1}, ${MODES[box.mode].toLowerCase()}, ${seconds(box.start)} to ${seconds(box.end)}, ${kf} place${kf === 1 ? "" : "s"}`;
  }

  function outline(className, rect, tagText) {
    const el = document.createElement("div");
    el.className = className;
    place(el, rect);
    const tag = document.createElement("span");
    tag.className = "bwv-redact__tag";
    tag.textContent = tagText;
    el.append(tag);
    layer.append(el);
    return el;
  }

  function drawLayer() {
    const t = video.currentTime;
    layer.replaceChildren();
    boxes.forEach((box, index) => {
      const rect = rectAt(box, t);
      if (!rect) return;
      const here = index === selected;
      const kind = `bwv-redact__box bwv-redact__box--${box.mode}${here ? " bwv-redact__box--selected" : ""}`;
      const el = outline(kind, rect, String(index + 1));
      el.dataset.box = String(index);
      if (!here) return;
      HANDLES.forEach((h) => {
        const handle = document.createElement("span");
        handle.className = `bwv-redact__handle bwv-redact__handle--${h}`;
        handle.dataset.handle = h;
        el.append(handle);
      });
    });
    proposals.forEach((p, index) => {
      const rect = rectAt(p, t);
      if (rect) outline("bwv-redact__proposal", rect, `Face ${index + 1}?`).dataset.proposal = String(index);
    });
    const box = boxes[selected];
    const rect = box && rectAt(box, t);
    layerState.textContent = box
      ? `${label(box, selected)}; ${rect ? `here at ${rect.x}, ${rect.y}, ${rect.w} by ${rect.h} pixels` : "not shown at this moment"}.`
      : "No box selected.";
  }

  // A button of the lists or the timeline; `more` is read by screen readers only.
  function button(className, text, onClick, more = "") {
    const b = document.createElement("button");
    b.type = "button";
    b.className = className;
    b.textContent = text;
    if (more) {
      const hidden = document.createElement("span");
      hidden.className = "govuk-visually-hidden";
      hidden.textContent = more;
      b.append(hidden);
    }
    b.addEventListener("click", onClick);
    return b;
  }

  function item(list, ...buttons) {
    const li = document.createElement("li");
    li.className = "bwv-redact__item";
    li.append(...buttons);
    list.append(li);
    return li;
  }

  const PICK = "govuk-button govuk-button--secondary bwv-redact__pick";
  const WARN = "govuk-button govuk-button--warning";

  // One row of a lane per range, so that ranges at the same times are all seen and selectable.
  function range(lane, start, end, className, text, onSelect, row) {
    const b = button(`bwv-redact__range ${className}`, "", onSelect, text);
    const whole = duration() || end;
    b.style.top = `${2 + row * ROW}px`;
    b.style.left = `${clamp((start / whole) * 100, 0, 100)}%`;
    b.style.width = `${clamp(((Math.min(end, whole) - start) / whole) * 100, 0.5, 100)}%`;
    b.title = text;
    lane.append(b);
    return b;
  }

  function seekTo(t) {
    video.pause();
    video.currentTime = clamp(t, 0, duration());
  }

  function renderLists() {
    Object.values(lists).forEach((list) => list.replaceChildren());
    Object.values(lanes).forEach((lane) => lane.replaceChildren());
    boxes.forEach((box, index) => {
      const here = index === selected;
      const pick = button(PICK, label(box, index), () => select(index, true));
      pick.setAttribute("aria-pressed", String(here));
      const li = item(
        lists.boxes,
        pick,
        button(`${WARN} bwv-redact__remove`, "Delete", () => removeBox(index), ` box ${index + 1}`),
      );
      li.classList.toggle("bwv-redact__item--selected", here);
      const kind = `bwv-redact__range--box${here ? " bwv-redact__range--selected" : ""}`;
      const text = `${label(box, index)}: select it`;
      range(lanes.boxes, box.start, box.end, kind, text, () => select(index, true), index);
    });
    proposals.forEach((p, index) => {
      const name = `face ${index + 1}`;
      const go = () => seekTo(p.start);
      const text = `Proposed ${name}`;
      range(lanes.boxes, p.start, p.end, "bwv-redact__range--proposal", text, go, boxes.length + index);
      const accept = () => {
        proposals.splice(index, 1);
        boxes.push(p);
        selected = boxes.length - 1;
        say(`Face ${index + 1} accepted: it is box ${boxes.length}.`);
        changed();
      };
      const reject = () => {
        proposals.splice(index, 1);
        say(`Face ${index + 1} rejected.`);
        changed();
      };
      item(
        lists.proposals,
        button(PICK, `Face ${index + 1}, ${seconds(p.start)} to ${seconds(p.end)}`, go),
        button("govuk-button bwv-redact__accept", "Accept", accept, ` ${name}`),
        button(`${WARN} bwv-redact__reject`, "Reject", reject, ` ${name}`),
      );
    });
    lanes.boxes.style.height = `${Math.max(1, boxes.length + proposals.length) * ROW + 2}px`;
    mutes.forEach((m, index) => {
      const text = `Muted from ${seconds(m.start)} to ${seconds(m.end)}`;
      const go = () => seekTo(m.start);
      const remove = () => {
        mutes.splice(index, 1);
        say("Muted range deleted.");
        changed();
      };
      item(
        lists.mutes,
        button(PICK, text, go),
        button(`${WARN} bwv-redact__remove`, "Delete", remove, ` muted range ${index + 1}`),
      );
      range(lanes.mutes, m.start, m.end, "bwv-redact__range--mute", text, go, index);
    });
    if (muteStart !== null) {
      const end = Math.max(muteStart, video.currentTime);
      const go = () => seekTo(muteStart);
      range(lanes.mutes, muteStart, end, "bwv-redact__range--pending", "Muted range being set", go, mutes.length);
    }
    lanes.mutes.style.height = `${Math.max(1, mutes.length + (muteStart === null ? 0 : 1)) * ROW + 2}px`;
    editor.querySelector("[data-empty-boxes]").hidden = boxes.length > 0;
    editor.querySelector("[data-empty-mutes]").hidden = mutes.length > 0;
    editor.querySelectorAll("[data-needs-box]").forEach((control) => {
      control.disabled = selected < 0;
    });
    if (boxes[selected]) modeSelect.value = boxes[selected].mode;
    muteButton.firstChild.textContent =
      muteStart === null ? "Start muted audio here " : "End muted audio here ";
  }

  function movePlayhead() {
    const end = duration();
    if (!(end > 0)) return;
    const f = clamp(video.currentTime / end, 0, 1);
    playhead.style.left = `calc(70px + (100% - 70px) * ${f.toFixed(5)})`;
  }

  function render() {
    drawLayer();
    renderLists();
    movePlayhead();
  }

  function select(index, seek) {
    selected = index;
    const box = boxes[index];
    if (box && seek && !rectAt(box, video.currentTime)) seekTo(box.start);
    render();
    layer.focus();
  }

  function removeBox(index) {
    boxes.splice(index, 1);
    selected = Math.min(selected, boxes.length - 1);
    if (index < selected) selected -= 1;
    say(`Box ${index + 1} deleted.`);
    changed();
  }

  function addBox(rect) {
    const t = now();
    const end = duration();
    boxes.push({
      start: t,
      end: end > t ? end : t + 1,
      mode: "black",
      keyframes: [{ t, ...inside(rect) }],
    });
    selected = boxes.length - 1;
    say(`Box ${boxes.length} drawn from ${seconds(t)} to the end.`);
    changed();
  }

  // -- Actions -------------------------------------------------------------------------------

  function newBox() {
    const w = Math.max(MIN_SIZE, Math.round(width / 4));
    const h = Math.max(MIN_SIZE, Math.round(height / 4));
    addBox({ x: (width - w) / 2, y: (height - h) / 2, w, h });
    layer.focus();
  }

  function setIn() {
    const box = boxes[selected];
    if (!box) return;
    const t = now();
    if (t >= box.end) return say("The in point must come before the out point.");
    box.start = t;
    say(`Box ${selected + 1} starts at ${seconds(t)}.`);
    changed();
  }

  function setOut() {
    const box = boxes[selected];
    if (!box) return;
    // The out point is the end of the frame shown: that frame is still covered.
    const t = Math.min(duration() || Infinity, now() + 1 / fps);
    if (t <= box.start) return say("The out point must come after the in point.");
    box.end = Math.round(t * 1000) / 1000;
    say(`Box ${selected + 1} ends at ${seconds(box.end)}.`);
    changed();
  }

  function mute() {
    const t = now();
    if (muteStart === null) {
      muteStart = t;
      say(`Muted audio starts at ${seconds(t)}: go to its end and press M again.`);
    } else {
      const [start, end] = [Math.min(muteStart, t), Math.max(muteStart, t)];
      muteStart = null;
      if (end > start) {
        mutes.push({ start, end });
        mutes.sort((a, b) => a.start - b.start);
        say(`Audio muted from ${seconds(start)} to ${seconds(end)}.`);
      } else say("A muted range needs an end after its start.");
    }
    changed();
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    if (!response.ok) throw new Error((await response.text()) || `error ${response.status}`);
    return response;
  }

  async function track() {
    const box = boxes[selected];
    if (!box) return;
    const t = now();
    const rect = rectAt(box, t);
    if (!rect) return say("The selected box is not shown at this moment.");
    const next = box.keyframes.find((k) => k.t > t + 0.5 / fps);
    const until = next ? next.t : box.end;
    const index = selected;
    say(`Tracking box ${index + 1} from ${seconds(t)} to ${seconds(until)}…`);
    try {
      const response = await post(editor.dataset.trackUrl, { t, ...rect, until });
      const { keyframes } = await response.json();
      setKeyframe(box, t, rect);
      box.keyframes = box.keyframes.filter((k) => k.t <= t + 0.5 / fps || k.t >= until - 0.5 / fps);
      keyframes.forEach((k) => {
        if (k.t > t && k.t < until) setKeyframe(box, k.t, k);
      });
      say(`Box ${index + 1} tracked: ${keyframes.length} places added. Play it back to check.`);
      changed();
    } catch (error) {
      say(`Tracking failed: ${error.message}`);
    }
  }

  async function faces() {
    say("Looking for faces…");
    try {
      const response = await post(editor.dataset.facesUrl, {});
      proposals = (await response.json()).proposals.map(normalise).filter(Boolean);
      say(
        proposals.length
          ? `${proposals.length} face${proposals.length === 1 ? "" : "s"} proposed: accept or reject each one.`
          : "No faces were found: draw the boxes by hand.",
      );
      changed();
    } catch (error) {
      say(`The face finder failed: ${error.message}`);
    }
  }

  async function showPreview() {
    if (!boxes.length) return say("Draw a box first: the preview shows the boxes redacted.");
    video.pause();
    const t = now();
    say(`Preview of ${seconds(t)}…`);
    try {
      const response = await post(editor.dataset.previewUrl, {
        t,
        boxes: JSON.parse(boxesField.value),
      });
      // Drawn on a canvas: the policy allows images from this site only, not blob: addresses.
      const picture = await createImageBitmap(await response.blob());
      preview.width = picture.width;
      preview.height = picture.height;
      preview.getContext("2d").drawImage(picture, 0, 0);
      preview.hidden = false;
      preview.dataset.t = String(t);
      preview.setAttribute("aria-label", `Preview of the redacted frame at ${seconds(t)}`);
      say(`Preview of the frame at ${seconds(t)} shown below.`);
    } catch (error) {
      say(`No preview: ${error.message}`);
    }
  }

  const actions = {
    new: newBox,
    in: setIn,
    out: setOut,
    track,
    mute,
    preview: showPreview,
    faces,
    delete: () => selected >= 0 && removeBox(selected),
  };
  editor.querySelectorAll("[data-do]").forEach((button) => {
    button.addEventListener("click", () => actions[button.dataset.do]());
  });
  modeSelect.addEventListener("change", () => {
    if (!boxes[selected]) return;
    boxes[selected].mode = modeSelect.value;
    changed();
  });

  // -- Mouse: draw, move, resize -------------------------------------------------------------

  layer.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    // Scrolling now would move the picture under the pointer in the middle of the drag.
    layer.focus({ preventScroll: true });
    video.pause();
    const at = toPicture(event);
    const handle = event.target.dataset.handle;
    const boxEl = event.target.closest("[data-box]");
    const proposalEl = event.target.closest("[data-proposal]");
    if (boxEl) {
      const index = parseInt(boxEl.dataset.box, 10);
      selected = index;
      const rect = rectAt(boxes[index], video.currentTime);
      drag = { kind: handle ? "resize" : "move", handle, index, from: at, rect, moved: false };
    } else if (proposalEl) {
      say("A proposed face is accepted or rejected in the list of faces below.");
      return;
    } else {
      drag = { kind: "draw", from: at, rect: { x: at.x, y: at.y, w: 0, h: 0 } };
    }
    layer.setPointerCapture(event.pointerId);
    render();
  });

  layer.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const at = toPicture(event);
    const dx = at.x - drag.from.x;
    const dy = at.y - drag.from.y;
    if (drag.kind === "draw") {
      drag.rect = {
        x: Math.min(at.x, drag.from.x),
        y: Math.min(at.y, drag.from.y),
        w: Math.abs(dx),
        h: Math.abs(dy),
      };
      let ghost = layer.querySelector(".bwv-redact__ghost");
      if (!ghost) {
        ghost = document.createElement("div");
        ghost.className = "bwv-redact__ghost";
        layer.append(ghost);
      }
      place(ghost, drag.rect);
      return;
    }
    const r = drag.rect;
    let next = { ...r };
    if (drag.kind === "move") next = { ...r, x: r.x + dx, y: r.y + dy };
    else {
      const h = drag.handle;
      if (h.includes("w")) next = { ...next, x: Math.min(r.x + dx, r.x + r.w - MIN_SIZE), w: Math.max(MIN_SIZE, r.w - dx) };
      if (h.includes("e")) next = { ...next, w: Math.max(MIN_SIZE, r.w + dx) };
      if (h.includes("n")) next = { ...next, y: Math.min(r.y + dy, r.y + r.h - MIN_SIZE), h: Math.max(MIN_SIZE, r.h - dy) };
      if (h.includes("s")) next = { ...next, h: Math.max(MIN_SIZE, r.h + dy) };
    }
    drag.moved = true;
    setKeyframe(boxes[drag.index], now(), next);
    drawLayer();
  });

  function endDrag() {
    if (!drag) return;
    const done = drag;
    drag = null;
    if (done.kind === "draw") {
      if (done.rect.w >= MIN_SIZE && done.rect.h >= MIN_SIZE) addBox(done.rect);
      else {
        selected = -1;
        render();
      }
      return;
    }
    if (done.moved) say(`Box ${done.index + 1} placed at ${seconds(now())}.`);
    changed();
  }
  layer.addEventListener("pointerup", endDrag);
  layer.addEventListener("pointercancel", endDrag);

  // -- Keyboard ------------------------------------------------------------------------------

  // Arrows belong to the drawing area while it has the focus and a box is selected; the player's
  // own arrows (5 seconds back or forward) work everywhere else.
  layer.addEventListener("keydown", (event) => {
    const box = boxes[selected];
    const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (!box || !arrows[event.key] || event.ctrlKey || event.metaKey || event.altKey) return;
    const rect = rectAt(box, video.currentTime);
    if (!rect) return;
    event.preventDefault();
    event.stopPropagation();
    video.pause();
    const [dx, dy] = arrows[event.key];
    const step = Math.max(1, Math.round(width / 100));
    const next = event.shiftKey
      ? { ...rect, w: Math.max(MIN_SIZE, rect.w + dx * step), h: Math.max(MIN_SIZE, rect.h + dy * step) }
      : { ...rect, x: rect.x + dx * step, y: rect.y + dy * step };
    setKeyframe(box, now(), next);
    changed();
  });

  editor.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const keys = {
      n: newBox,
      i: setIn,
      o: setOut,
      t: track,
      m: mute,
      p: showPreview,
      Delete: actions.delete,
      Backspace: actions.delete,
      "[": () => boxes.length && select((selected - 1 + boxes.length) % boxes.length, true),
      "]": () => boxes.length && select((selected + 1) % boxes.length, true),
    };
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const action = keys[key];
    if (!action) return;
    if ((key === "Delete" || key === "Backspace") && event.target.tagName === "BUTTON") return;
    event.preventDefault();
    event.stopPropagation();
    action();
  });

  // -- Following the video ---------------------------------------------------------------------

  let frameRequest = 0;
  function follow() {
    drawLayer();
    movePlayhead();
    frameRequest = video.paused ? 0 : requestAnimationFrame(follow);
  }
  video.addEventListener("play", () => {
    if (!frameRequest) frameRequest = requestAnimationFrame(follow);
  });
  ["seeked", "timeupdate", "pause"].forEach((name) => {
    video.addEventListener(name, () => {
      drawLayer();
      movePlayhead();
    });
  });
  video.addEventListener("loadedmetadata", () => {
    fitLayer();
    render();
  });
  new ResizeObserver(fitLayer).observe(video);
  window.addEventListener("resize", fitLayer);

  // What the fields hold (a proposal, or what was sent with an error) is what the editor shows;
  // the JSON typed into them, when they are shown, is loaded again.
  function load() {
    try {
      const rawBoxes = JSON.parse(boxesField.value || "[]");
      const rawMutes = JSON.parse(mutesField.value || "[]");
      boxes = (Array.isArray(rawBoxes) ? rawBoxes : []).map(normalise).filter(Boolean);
      mutes = (Array.isArray(rawMutes) ? rawMutes : [])
        .map((m) => ({ start: Number(m?.start), end: Number(m?.end) }))
        .filter((m) => Number.isFinite(m.start) && Number.isFinite(m.end));
      selected = Math.min(selected, boxes.length - 1);
      render();
    } catch {
      say("The boxes in the JSON fields are not valid JSON: the editor kept what it had.");
    }
  }
  load();
  [boxesField, mutesField].forEach((field) => field.addEventListener("change", load));
  form.addEventListener("submit", save);
  // The fields stay shown when the server refused them, beside the error that names them.
  document.querySelector("[data-redact-json]").hidden = !boxesField.hasAttribute("aria-invalid");
  document.querySelectorAll("[data-redact-nojs]").forEach((el) => {
    el.hidden = true;
  });
  editor.hidden = false;
  editor.classList.add("bwv-redact--ready");
  fitLayer();
  save();
  render();
}

document.querySelectorAll("[data-redact-editor]").forEach(setUp);
