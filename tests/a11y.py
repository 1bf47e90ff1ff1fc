"""Accessibility and weight checks for the Chromium tests.

axe-core (tests/vendor/axe.min.js, pinned and checksummed by `make vendor`, never served by the
site) is put into the page by Playwright, which the site's Content-Security-Policy would refuse:
the pages are opened with `bypass_csp`, as the `browser_page` fixture does. Each check reports
every violation of the WCAG 2.0, 2.1 and 2.2 A and AA rules and of axe's best practices, whatever
its impact, with the elements it found.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "accessibility"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
MAX_SCRIPT_BYTES = 150 * 1024


def axe_violations(page) -> list[dict]:
    """What axe finds wrong in the page as it is now: a list of {rule, impact, help, elements}."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """async (tags) => await axe.run(document, {
             runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]})""",
        TAGS,
    )
    return [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "elements": [node["target"] for node in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]


def script_bytes(page) -> int:
    """Bytes of JavaScript the page loaded, uncompressed (whatever came from the cache too)."""
    return page.evaluate(
        """() => performance.getEntriesByType("resource")
                 .filter(e => new URL(e.name).pathname.endsWith(".js"))
                 .reduce((sum, e) => sum + e.decodedBodySize, 0)"""
    )


class Walk:
    """Opens pages as one user, and for each one checks it with axe, weighs its scripts and saves
    a full-page screenshot under test-artifacts/accessibility/<who>/. Problems are collected, so
    that one run reports every page's."""

    def __init__(self, page, base_url: str, who: str, *, viewport: dict = DESKTOP):
        self.page, self.base, self.who = page, base_url, who
        self.viewport = viewport
        self.problems: list[tuple[str, str, object]] = []
        self.checked: list[str] = []
        page.set_viewport_size(viewport)

    def visit(self, path: str, name: str | None = None, *, status: int = 200):
        response = self.page.goto(f"{self.base}{path}")
        if response is not None and response.status != status:
            self.problems.append((self.who, path, f"status {response.status}, expected {status}"))
        return self.check(name or path)

    def check(self, name: str):
        """Check the page as it is now (after a form was sent, say), under `name`."""
        page = self.page
        page.wait_for_load_state("load")
        # Let the design systems' scripts (modules, run after parsing) finish with the page.
        page.evaluate(
            "() => new Promise(done => requestAnimationFrame(() => setTimeout(done, 50)))"
        )
        where = urlparse(page.url).path
        for violation in axe_violations(page):
            self.problems.append((self.who, f"{name} ({where})", violation))
        weight = script_bytes(page)
        if weight > MAX_SCRIPT_BYTES:
            self.problems.append((self.who, name, f"{weight} bytes of JavaScript"))
        folder = ARTIFACTS / self.who
        folder.mkdir(parents=True, exist_ok=True)
        slug = "".join(c if c.isalnum() else "-" for c in name.strip("/")).strip("-") or "home"
        suffix = "-phone" if self.viewport == PHONE else ""
        page.screenshot(path=str(folder / f"{slug}{suffix}.png"), full_page=True)
        self.checked.append(name)
        return page
