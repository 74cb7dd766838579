"""The catalog page in tests, read back: its summary rows, its field rows per dataset, and its
paragraphs with an id."""

from __future__ import annotations

from html.parser import HTMLParser


class _Page(HTMLParser):
    """The catalog page read back: summary rows by dataset, field rows by dataset and field, and
    paragraphs with an id — each cell's text by its first class."""

    def __init__(self) -> None:
        super().__init__()
        self.summary: dict[str, dict[str, str]] = {}
        self.fields: dict[str, dict[str, dict[str, str]]] = {}
        self.paragraphs: dict[str, str] = {}
        self._section: str | None = None
        self._row: dict[str, str] | None = None
        self._cell: str | None = None
        self._paragraph: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section":
            self._section = attributes.get("data-dataset")
            self.fields[self._section or ""] = {}
        elif tag == "tr" and self._section is None and attributes.get("data-dataset"):
            self._row = self.summary.setdefault(attributes["data-dataset"] or "", {})
        elif tag == "tr" and self._section and attributes.get("data-field"):
            self._row = self.fields[self._section].setdefault(attributes["data-field"] or "", {})
        elif tag in ("td", "th") and self._row is not None and attributes.get("class"):
            self._cell, self._text = (attributes["class"] or "").split()[0], []
        elif tag == "p" and attributes.get("id"):
            self._paragraph, self._text = attributes["id"], []

    def handle_endtag(self, tag: str) -> None:
        text = " ".join(" ".join(self._text).split())
        if tag in ("td", "th") and self._row is not None and self._cell:
            self._row[self._cell] = text
            self._cell = None
        elif tag == "tr":
            self._row = None
        elif tag == "section":
            self._section = None
        elif tag == "p" and self._paragraph:
            self.paragraphs[self._paragraph] = text
            self._paragraph = None

    def handle_data(self, data: str) -> None:
        self._text.append(data)


def read_page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page
