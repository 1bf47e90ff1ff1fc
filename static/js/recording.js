// Bookmarks seek the player; the bookmark form starts at the player's current time.
(function () {
  const player = document.getElementById("player");
  if (!player) return;
  document.querySelectorAll("[data-seek]").forEach(function (button) {
    button.addEventListener("click", function () {
      player.currentTime = parseFloat(button.dataset.seek);
      player.focus();
    });
  });
  const at = document.getElementById("bookmark-at");
  if (at) {
    player.addEventListener("timeupdate", function () {
      if (document.activeElement !== at) at.value = player.currentTime.toFixed(1);
    });
  }
})();
