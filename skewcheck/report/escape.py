"""Text from traffic — keys, X-Shard answers, frame sources, profile frames — is hostile: every
reporter shows it only through these functions, one per medium. JSON needs none (its encoder
escapes every control character).

- `printable` for terminals and logs: control and format characters as `\\x1b`, `\\u202e`, so no
  key can clear a screen, draw a link, ring a bell or forge a line such as "verdict: PASS";
- `xml_text` for JUnit: the same, since XML 1.0 cannot carry most control characters at all;
- `markdown_text` / `markdown_code` for summary.md (GitHub renders raw HTML in it);
- HTML uses `html.escape` over `printable` text.
"""

from __future__ import annotations

import html
import re

MARKDOWN_LIMIT = 1_000_000  # bytes: GitHub refuses step summaries over 1 MiB
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_{}\[\]()#+\-.!|~^=:$])")


def printable(text: object) -> str:
    """`text` with every non-printable character escaped (Python's notion: controls, format
    characters such as the RTL override, separators other than the space, surrogates)."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in s)


def _escaped(ch: str) -> str:
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable_lines(text: str) -> str:
    """Each line made printable, the line breaks kept (for multi-line texts built here)."""
    return "\n".join(printable(line) for line in text.split("\n"))


def xml_text(text: object) -> str:
    """Text an XML 1.0 document can hold (ElementTree escapes < > & itself)."""
    return printable(text)


def html_text(text: object) -> str:
    return html.escape(printable(text))


def markdown_text(text: object) -> str:
    """Inline Markdown text (a paragraph or a table cell): nothing in it renders as markup, HTML,
    a link, a code span or a cell boundary."""
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", printable(text))
    return html.escape(escaped, quote=True)  # after: the entities' own "#" and ";" stay as they are


def markdown_code(text: object) -> str:
    """A code span that holds the text whatever backticks it contains (a fence one backtick
    longer than the longest run inside). Not for table cells: GitHub splits cells on `|` even
    inside code spans."""
    s = printable(text)
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s.strip() else ""
    return f"{fence}{pad}{s}{pad}{fence}"


def capped_markdown(text: str, limit: int = MARKDOWN_LIMIT) -> str:
    """The Markdown cut at a line boundary below `limit` bytes, saying so."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    note = "\n\n*(summary cut at 1 MB; the full report is in result.json and report.html)*\n"
    cut = data[: limit - len(note.encode())].decode("utf-8", errors="ignore")
    return cut[: cut.rfind("\n") + 1] + note
