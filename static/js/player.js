// The player component (templates/components/player.html): the video's own controls are replaced
// by a bar with frame steps, speeds, a timeline whose markers seek, the media time beside the
// recording's wall-clock time in London, full screen, keyboard shortcuts and a still of the frame.
// Without this script the browser's own controls stay, so the footage still plays.
const RATES = [0.25, 0.5, 1, 1.5, 2, 4];
const WALL = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Europe/London",
  weekday: "short",
  day: "numeric",
  month: "short",
  year: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});

function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}

function mediaTime(seconds) {
  const ms = Math.floor(seconds * 1000 + 0.5);
  const h = Math.floor(ms / 3600000);
  const m = Math.floor(ms / 60000) % 60;
  const s = Math.floor(ms / 1000) % 60;
  const pad = (n, w) => String(n).padStart(w, "0");
  return `${h}:${pad(m, 2)}:${pad(s, 2)}.${pad(ms % 1000, 3)}`;
}

// Typing in a field of the page is never taken for a shortcut.
function typing(target) {
  if (target.isContentEditable) return true;
  if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
  return target.tagName === "INPUT" && target.type !== "range";
}

function setUp(root) {
  const video = root.querySelector("video");
  const fps = parseFloat(root.dataset.fps) || 25;
  const start = Date.parse(root.dataset.start);
  const seekBar = root.querySelector(".bwv-player__seek");
  const rate = root.querySelector(".bwv-player__rate");
  const playButton = root.querySelector("[data-action=play]");
  const muteButton = root.querySelector("[data-action=mute]");
  const help = root.querySelector("[data-help]");
  const shown = {
    media: root.querySelector("[data-media-time]"),
    frame: root.querySelector("[data-frame]"),
    wall: root.querySelector("[data-wall-time]"),
  };
  let scrubbing = false;

  video.removeAttribute("controls");
  root.querySelector(".bwv-player__bar").hidden = false;
  root.classList.add("bwv-player--ready");

  const duration = () =>
    Number.isFinite(video.duration) && video.duration > 0
      ? video.duration
      : parseFloat(root.dataset.duration) || 0;

  function seek(seconds) {
    const end = duration();
    video.currentTime = clamp(seconds, 0, end > 0 ? end : seconds);
    show();
  }

  // Frames start at multiples of 1/fps: a step lands on the start of the next (or previous)
  // frame, so repeated steps never drift and the still taken is of the frame shown.
  function frameAt(seconds) {
    return Math.floor(seconds * fps + 1e-4);
  }

  function step(frames) {
    video.pause();
    const here = Math.round(video.currentTime * fps);
    seek((here + frames) / fps);
  }

  function setRate(value) {
    const chosen = clamp(value, RATES[0], RATES[RATES.length - 1]);
    video.playbackRate = chosen;
    rate.value = String(chosen);
  }

  function toggle() {
    if (video.paused || video.ended) video.play();
    else video.pause();
  }

  function fullScreen() {
    if (document.fullscreenElement) document.exitFullscreen();
    else if (root.requestFullscreen) root.requestFullscreen();
  }

  function show() {
    const t = video.currentTime;
    shown.media.textContent = mediaTime(t);
    shown.frame.textContent = String(frameAt(t));
    if (!Number.isNaN(start)) shown.wall.textContent = WALL.format(new Date(start + t * 1000));
    if (!scrubbing) seekBar.value = String(t);
  }

  function placeMarkers() {
    const end = duration();
    if (!(end > 0)) return;
    seekBar.max = String(end);
    root.querySelectorAll(".bwv-player__marker").forEach((marker) => {
      const at = parseFloat(marker.dataset.seek);
      // Placed through the CSSOM, which the policy allows; a style attribute it would refuse.
      marker.style.left = `${clamp((at / end) * 100, 0, 100)}%`;
      if (marker.dataset.end) {
        const span = parseFloat(marker.dataset.end) - at;
        marker.style.width = `${clamp((span / end) * 100, 0.5, 100)}%`;
      }
    });
  }

  root.querySelectorAll("[data-action]").forEach((button) => {
    button.addEventListener("click", () => {
      const action = button.dataset.action;
      if (action === "play") toggle();
      else if (action === "back") seek(video.currentTime - 5);
      else if (action === "forward") seek(video.currentTime + 5);
      else if (action === "frame-back") step(-1);
      else if (action === "frame-forward") step(1);
      else if (action === "mute") video.muted = !video.muted;
      else if (action === "fullscreen") fullScreen();
    });
  });
  root.querySelectorAll(".bwv-player__marker").forEach((marker) => {
    marker.addEventListener("click", () => {
      video.pause();
      seek(parseFloat(marker.dataset.seek));
    });
  });
  // Buttons elsewhere on the page (a bookmark's "Play from") name the video they seek.
  document.querySelectorAll(`[data-seek][data-player="${video.id}"]`).forEach((button) => {
    button.addEventListener("click", () => {
      seek(parseFloat(button.dataset.seek));
      video.focus();
    });
  });

  rate.addEventListener("change", () => setRate(parseFloat(rate.value)));
  seekBar.addEventListener("input", () => {
    scrubbing = true;
    seek(parseFloat(seekBar.value));
  });
  seekBar.addEventListener("change", () => {
    scrubbing = false;
  });
  video.addEventListener("click", toggle);
  video.addEventListener("timeupdate", show);
  video.addEventListener("seeked", show);
  video.addEventListener("loadedmetadata", () => {
    placeMarkers();
    show();
  });
  video.addEventListener("ratechange", () => {
    rate.value = String(video.playbackRate);
  });
  video.addEventListener("volumechange", () => {
    muteButton.textContent = video.muted ? "Unmute" : "Mute";
    muteButton.setAttribute("aria-pressed", String(video.muted));
  });
  const played = () => {
    playButton.textContent = video.paused ? "Play" : "Pause";
  };
  video.addEventListener("play", played);
  video.addEventListener("pause", played);

  root.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const onControl = event.target.tagName === "BUTTON" || event.target.tagName === "SUMMARY";
    switch (event.key) {
      case " ":
        if (onControl) return; // space presses the focused button, as everywhere else
        toggle();
        break;
      case "k":
      case "K":
        video.pause();
        break;
      case "l":
      case "L":
        if (video.paused) {
          video.play();
        } else {
          setRate(RATES[Math.min(RATES.indexOf(video.playbackRate) + 1, RATES.length - 1)] || 1);
        }
        break;
      case "j":
      case "J":
        if (video.playbackRate > 1) setRate(RATES[RATES.indexOf(video.playbackRate) - 1] || 1);
        else seek(video.currentTime - 5);
        break;
      case "ArrowLeft":
        seek(video.currentTime - 5);
        break;
      case "ArrowRight":
        seek(video.currentTime + 5);
        break;
      case ",":
      case "<":
        step(-1);
        break;
      case ".":
      case ">":
        step(1);
        break;
      case "f":
      case "F":
        fullScreen();
        break;
      case "?":
        help.open = !help.open;
        break;
      default:
        return;
    }
    event.preventDefault();
  });

  const still = root.querySelector("[data-still-form]");
  if (still) {
    still.addEventListener("submit", () => {
      video.pause();
      still.querySelector("[data-still-at]").value = video.currentTime.toFixed(3);
    });
  }

  placeMarkers();
  show();
}

document.querySelectorAll("[data-bwv-player]").forEach(setUp);
