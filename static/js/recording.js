// The bookmark form starts at the player's current time (the player seeks from the bookmarks).
(function () {
  const player = document.getElementById("player");
  const at = document.getElementById("bookmark-at");
  if (!player || !at) return;
  player.addEventListener("timeupdate", function () {
    if (document.activeElement !== at) at.value = player.currentTime.toFixed(1);
  });
})();
