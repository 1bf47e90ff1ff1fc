"""Reading pages in tests: each element's attributes, and the text inside each element that has
an id, without depending on how the markup is laid out."""

from html.parser import HTMLParser

VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class Page(HTMLParser):
    def __init__(self, html: str | bytes):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.text: dict[str, str] = {}
        self._spaced: dict[str, str] = {}  # the same, with a space where an element starts or ends
        self._open: list[tuple[str, str | None]] = []
        self.feed(html.decode() if isinstance(html, bytes) else html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.elements.append((tag, attrs))
        if tag in VOID:
            return
        self._space()
        self._open.append((tag, attrs.get("id")))
        if attrs.get("id"):
            self.text[attrs["id"]] = ""
            self._spaced[attrs["id"]] = ""

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def _space(self):
        for _tag, element_id in self._open:
            if element_id:
                self._spaced[element_id] += " "

    def handle_endtag(self, tag):
        self._space()
        # Close up to the matching tag (browsers forgive a missing end tag; so do we).
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                break

    def handle_data(self, data):
        for _tag, element_id in self._open:
            if element_id:
                self.text[element_id] += data
                self._spaced[element_id] += data

    def by_id(self, element_id: str) -> dict:
        return next(attrs for _tag, attrs in self.elements if attrs.get("id") == element_id)

    def ids(self) -> set[str]:
        return {attrs["id"] for _tag, attrs in self.elements if attrs.get("id")}

    def words(self, element_id: str) -> str:
        """The element's text with its white space folded, as a reader would see it."""
        return " ".join(self._spaced[element_id].split())
