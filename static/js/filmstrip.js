// The player's filmstrip (evidence/filmstrip.py): pointing at the timeline, or dragging or
// stepping its handle, shows above it the frame nearest that time, cut from one sprite of small
// frames taken every few seconds. The sprite loads on the first hover. Without a filmstrip, or
// without this script, the player works the same.
function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}

function clock(seconds) {
  const s = Math.floor(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  const h = Math.floor(s / 3600);
  return h ? `${h}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}` : `${Math.floor(s / 60)}:${pad(s % 60)}`;
}

function setUpFilmstrip(strip) {
  const player = strip.closest("[data-bwv-player]");
  const timeline = strip.parentElement;
  const seekBar = player.querySelector(".bwv-player__seek");
  const video = player.querySelector("video");
  const sprite = strip.querySelector(".bwv-filmstrip__sprite");
  const frame = strip.querySelector(".bwv-filmstrip__frame");
  const label = strip.querySelector("[data-filmstrip-time]");
  const interval = parseFloat(strip.dataset.interval) || 1;
  const count = parseInt(strip.dataset.count, 10) || 1;
  const columns = parseInt(strip.dataset.columns, 10) || 1;
  const width = parseInt(strip.dataset.width, 10);
  const height = parseInt(strip.dataset.height, 10);
  // Sized and moved through the CSSOM, which the policy allows; a style attribute it would refuse.
  frame.style.width = `${width}px`;
  frame.style.height = `${height}px`;

  const duration = () =>
    Number.isFinite(video.duration) && video.duration > 0
      ? video.duration
      : parseFloat(player.dataset.duration) || 0;

  function showAt(seconds) {
    if (!sprite.getAttribute("src")) sprite.src = strip.dataset.filmstrip;
    const index = clamp(Math.floor(seconds / interval + 1e-6), 0, count - 1);
    const x = (index % columns) * width;
    const y = Math.floor(index / columns) * height;
    sprite.style.transform = `translate(${-x}px, ${-y}px)`;
    label.textContent = clock(seconds);
    const end = duration();
    const span = timeline.clientWidth;
    const at = end > 0 ? (seconds / end) * span : 0;
    strip.style.left = `${clamp(at, width / 2 + 2, Math.max(width / 2 + 2, span - width / 2 - 2))}px`;
    strip.hidden = false;
  }

  function hide() {
    strip.hidden = true;
  }

  seekBar.addEventListener("pointermove", (event) => {
    const box = seekBar.getBoundingClientRect();
    if (!(box.width > 0)) return;
    showAt(clamp((event.clientX - box.left) / box.width, 0, 1) * duration());
  });
  seekBar.addEventListener("pointerleave", hide);
  // Keyboard scrubbing (arrow keys on the handle) shows the frame of the handle's place.
  seekBar.addEventListener("input", () => showAt(parseFloat(seekBar.value) || 0));
  seekBar.addEventListener("blur", hide);
  seekBar.addEventListener("keyup", (event) => {
    if (event.key === "Escape") hide();
  });
}

document.querySelectorAll("[data-bwv-player] .bwv-filmstrip[data-filmstrip]").forEach(setUpFilmstrip);
