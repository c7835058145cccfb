"""Reading the HTML views of results back: table cells and section titles."""

from __future__ import annotations

from html.parser import HTMLParser


class Tables(HTMLParser):
    """The text of every cell of every table, and the bold titles, of an HTML view."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self.titles, self._cell, self._bold = [], [], None, False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "strong":
            self._bold = True

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1].append(self._cell.strip())
            self._cell = None
        elif tag == "strong":
            self._bold = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        elif self._bold:
            self.titles.append(data)
