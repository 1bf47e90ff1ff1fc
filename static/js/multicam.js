// The incident view (templates/staff/together.html): several player components kept in step by
// wall-clock time. One timeline, from the first recording's start to the last one's end, drives
// them all: each video's position is (time on the timeline − its start). A recording that has not
// started yet at that time, or has ended, waits paused and says so.
// While playing, the clock follows the first recording that is playing (its media clock is what
// the picture shows); the others are brought back in step when they drift by more than a frame,
// by a small change of speed (smooth), or by a seek when they are more than a second out.
// Each player's own controls are taken over, in the capture phase before player.js hears them, to
// move every recording together; mute and full screen stay each player's own.
// The page's element gets an API, `element.bwvMulticam`: time, play(), pause(), seek(seconds).
const RATES = [0.25, 0.5, 1, 1.5, 2, 4];
const SEEK_DRIFT = 1.0; // seconds out of step beyond which a seek, not a speed change, catches up
const WALL = new Intl.DateTimeFormat("en-GB", {
  timeZone: "Europe/London",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
  hourCycle: "h23",
});
const PLAYER_KEYS = new Set([" ", "k", "K", "l", "L", "j", "J", "ArrowLeft", "ArrowRight", ",", "<", ".", ">"]);

function clamp(value, low, high) {
  return Math.min(Math.max(value, low), high);
}

function typing(target) {
  if (target.isContentEditable) return true;
  if (target.tagName === "TEXTAREA" || target.tagName === "SELECT") return true;
  return target.tagName === "INPUT" && target.type !== "range";
}

function setUp(root) {
  const origin = Date.parse(root.dataset.start);
  const span = Math.max(0, (Date.parse(root.dataset.end) - origin) / 1000);
  const bar = root.querySelector("[data-multicam-bar]");
  const seekBar = root.querySelector("[data-multicam-seek]");
  const rateSelect = root.querySelector("[data-multicam-rate]");
  const playButton = root.querySelector("[data-multicam-action=play]");
  const wallShown = root.querySelector("[data-multicam-wall]");
  const tiles = Array.from(document.querySelectorAll("[data-bwv-multicam-tile]"), (tile, n) => {
    const player = tile.querySelector("[data-bwv-player]");
    return {
      tile,
      player,
      video: player.querySelector("video"),
      note: tile.querySelector("[data-multicam-state]"),
      offset: (Date.parse(player.dataset.start) - origin) / 1000,
      fps: parseFloat(player.dataset.fps) || 25,
      first: n === 0,
      status: null,
      correcting: false,
    };
  });
  const fps = Math.max(...tiles.map((x) => x.fps));
  let time = 0; // seconds from the first start
  let playing = false;
  let rate = 1;
  let scrubbing = false;
  let last = performance.now();

  root.querySelector("[data-multicam-fallback]").hidden = true;
  bar.hidden = false;
  root.querySelector("[data-multicam-note]").hidden = false;
  seekBar.max = String(span);

  const length = (x) =>
    Number.isFinite(x.video.duration) && x.video.duration > 0
      ? x.video.duration
      : parseFloat(x.player.dataset.duration) || 0;
  const covers = (x) => time >= x.offset && time - x.offset < length(x);
  const wallAt = (seconds) => WALL.format(new Date(origin + seconds * 1000));

  function note(x, wanted) {
    const status = x.video.error ? "failed" : wanted;
    if (x.status === status) return;
    x.status = status;
    if (status === "failed") x.note.textContent = "This recording could not be loaded: open it on its own";
    else if (status === "waiting") x.note.textContent = `Not started yet: starts at ${wallAt(x.offset)}`;
    else if (status === "ended") x.note.textContent = `Ended at ${wallAt(x.offset + length(x))}`;
    else x.note.textContent = "";
    x.tile.classList.toggle("bwv-multicam__tile--idle", status !== "playing");
  }

  function setPlaybackRate(x, value) {
    if (x.video.playbackRate !== value) x.video.playbackRate = value;
  }

  // Every video to its place at `time`; `exact` seeks those out of place by any amount.
  function sync(exact) {
    for (const x of tiles) {
      const { video } = x;
      const local = time - x.offset;
      if (!covers(x)) {
        note(x, local < 0 ? "waiting" : "ended");
        if (!video.paused) video.pause();
        const rest = local < 0 ? 0 : length(x);
        if (Math.abs(video.currentTime - rest) > 1e-3) video.currentTime = rest;
        continue;
      }
      note(x, "playing");
      const drift = video.currentTime - local;
      if (!playing) {
        if (!video.paused) video.pause();
        setPlaybackRate(x, rate);
        if (Math.abs(drift) > 1e-3) video.currentTime = local;
        continue;
      }
      if (exact || Math.abs(drift) > SEEK_DRIFT) {
        if (!video.seeking || exact) video.currentTime = local;
        x.correcting = false;
        setPlaybackRate(x, rate);
      } else {
        // More than a frame out: faster or slower until within a quarter of one.
        const frame = 1 / x.fps;
        x.correcting = Math.abs(drift) > (x.correcting ? frame / 4 : frame);
        setPlaybackRate(x, x.correcting ? rate * clamp(1 - 2 * drift, 0.5, 1.5) : rate);
      }
      if (video.paused) video.play().catch(() => {});
    }
  }

  function show() {
    wallShown.textContent = wallAt(time);
    if (!scrubbing) seekBar.value = String(time);
    playButton.textContent = playing ? "Pause all" : "Play all";
    rateSelect.value = String(rate);
    for (const x of tiles) {
      const own = x.player.querySelector(".bwv-player__rate");
      if (own) own.value = String(rate);
    }
  }

  function tick(now) {
    const elapsed = (now - last) / 1000;
    last = now;
    if (playing) {
      // A video that cannot play (its footage failed to load) neither leads nor holds the clock.
      const live = tiles.filter((x) => covers(x) && !x.video.error);
      const leader = live.find(
        (x) => !x.video.paused && !x.video.seeking && x.video.readyState >= 2,
      );
      const loading = live.some((x) => x.video.seeking || x.video.readyState < 2);
      if (leader) {
        // The leader runs at the chosen speed; the others follow it.
        setPlaybackRate(leader, rate);
        leader.correcting = false;
        time = leader.offset + leader.video.currentTime;
      } else if (!loading) {
        time += elapsed * rate; // no footage at this time: the clock runs on its own
      }
      if (time >= span) {
        time = span;
        playing = false;
      }
      sync(false);
    }
    show();
    requestAnimationFrame(tick);
  }

  function play() {
    if (time >= span) time = 0;
    playing = true;
    sync(true);
  }

  function pause() {
    playing = false;
    sync(true);
  }

  const toggle = () => (playing ? pause() : play());

  function seek(seconds) {
    time = clamp(seconds, 0, span);
    sync(true);
    show();
  }

  function step(frames) {
    playing = false;
    seek((Math.round(time * fps) + frames) / fps);
  }

  function setRate(value) {
    rate = clamp(value, RATES[0], RATES[RATES.length - 1]);
    for (const x of tiles) setPlaybackRate(x, rate);
    show();
  }

  function act(action) {
    if (action === "play") toggle();
    else if (action === "back") seek(time - 5);
    else if (action === "forward") seek(time + 5);
    else if (action === "frame-back") step(-1);
    else if (action === "frame-forward") step(1);
    else return false;
    return true;
  }

  // The player's shortcuts, for all of them: in any player, and on the shared bar.
  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (!PLAYER_KEYS.has(event.key)) return;
    const onControl = event.target.tagName === "BUTTON" || event.target.tagName === "SUMMARY";
    if (event.key === " " && onControl) return; // space presses the focused button
    const key = event.key.toLowerCase();
    if (key === " ") toggle();
    else if (key === "k") pause();
    else if (key === "l") {
      if (!playing) play();
      else setRate(RATES[Math.min(RATES.indexOf(rate) + 1, RATES.length - 1)] || 1);
    } else if (key === "j") {
      if (rate > 1) setRate(RATES[RATES.indexOf(rate) - 1] || 1);
      else seek(time - 5);
    } else if (key === "arrowleft") seek(time - 5);
    else if (key === "arrowright") seek(time + 5);
    else if (key === "," || key === "<") step(-1);
    else step(1);
    event.preventDefault();
    event.stopPropagation();
  }

  bar.addEventListener("keydown", onKey);
  root.querySelectorAll("[data-multicam-action]").forEach((button) => {
    button.addEventListener("click", () => act(button.dataset.multicamAction));
  });
  rateSelect.addEventListener("change", () => setRate(parseFloat(rateSelect.value)));
  seekBar.addEventListener("input", () => {
    scrubbing = true;
    seek(parseFloat(seekBar.value));
  });
  seekBar.addEventListener("change", () => {
    scrubbing = false;
  });

  // Each player's own controls move them all. Listened to in the capture phase, on the player's
  // element, so that player.js's own handlers (on the controls themselves) never hear them.
  for (const x of tiles) {
    x.video.muted = !x.first; // several officers' sound at once is noise: the first is heard
    x.player.addEventListener(
      "click",
      (event) => {
        const button = event.target.closest("[data-action]");
        if (event.target === x.video) {
          event.stopPropagation();
          toggle();
        } else if (button && act(button.dataset.action)) {
          event.stopPropagation();
        }
      },
      true,
    );
    x.player.addEventListener(
      "input",
      (event) => {
        if (!event.target.classList.contains("bwv-player__seek")) return;
        event.stopPropagation();
        seek(x.offset + parseFloat(event.target.value));
      },
      true,
    );
    x.player.addEventListener(
      "change",
      (event) => {
        if (!event.target.classList.contains("bwv-player__rate")) return;
        event.stopPropagation();
        setRate(parseFloat(event.target.value));
      },
      true,
    );
    // The speed changes that keep it in step are not the speed chosen: its menu keeps that one.
    x.player.addEventListener("ratechange", (event) => event.stopPropagation(), true);
    x.player.addEventListener("keydown", onKey, true);
    x.video.addEventListener("loadedmetadata", () => sync(true));
    x.video.addEventListener("error", () => sync(false));
  }

  root.bwvMulticam = {
    get time() {
      return time;
    },
    get playing() {
      return playing;
    },
    play,
    pause,
    seek,
  };
  sync(true);
  show();
  requestAnimationFrame(tick);
}

document.querySelectorAll("[data-bwv-multicam]").forEach(setUp);
