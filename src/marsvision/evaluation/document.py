"""A tiny report document model (sections of notes, tables, figures, preformatted text) and its renderers.

:func:`render_html` gives one self-contained page: inline CSS, figures embedded as base64 ``data:`` URIs,
no scripts and no external links. :func:`render_markdown` references the figure files relative to the
Markdown file.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Note:
    """A paragraph of plain text (e.g. why a section is omitted)."""

    text: str


@dataclass(frozen=True)
class Table:
    """A table of already formatted cells."""

    headers: Sequence[str]
    rows: Sequence[Sequence[str]]


@dataclass(frozen=True)
class Figure:
    """A PNG file with a caption."""

    path: Path
    caption: str


@dataclass(frozen=True)
class Pre:
    """Preformatted text (configuration, JSON)."""

    text: str


@dataclass(frozen=True)
class Link:
    """A file of the report's folder offered as a link instead of its contents (e.g. ``summary.json``).

    The HTML page stays self-contained: the link carries the file as a ``data:`` URI (it downloads under its
    name); the Markdown links to the file next to it.
    """

    path: Path
    text: str
    media_type: str = "application/json"


Block = Note | Table | Figure | Pre | Link


@dataclass
class Section:
    """A titled list of blocks."""

    title: str
    blocks: list[Block] = field(default_factory=list)


_CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; background: #fff; padding: 0 1em; }
h1 { border-bottom: 2px solid #c1440e; padding-bottom: .3em; }
h2 { margin-top: 1.6em; color: #8a2f09; }
table { border-collapse: collapse; margin: .8em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; }
th { background: #f3ebe6; }
tr:nth-child(even) td { background: #faf7f5; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: .8em; overflow-x: auto; font-size: 13px; }
figure { margin: 1em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 14px; }
p.note { color: #666; font-style: italic; }
"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(title: str, sections: Sequence[Section]) -> str:
    """Render a self-contained HTML page (figures inlined as data URIs, inline CSS, no scripts)."""
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    for section in sections:
        out.append(f"<section><h2>{esc(section.title)}</h2>")
        for block in section.blocks:
            if isinstance(block, Note):
                out.append(f'<p class="note">{esc(block.text)}</p>')
            elif isinstance(block, Pre):
                out.append(f"<pre>{esc(block.text)}</pre>")
            elif isinstance(block, Link):
                uri = f"data:{block.media_type};base64," + base64.b64encode(block.path.read_bytes()).decode("ascii")
                out.append(f'<p><a href="{uri}" download="{esc(block.path.name)}">{esc(block.path.name)}</a>: ')
                out.append(f"{esc(block.text)}</p>")
            elif isinstance(block, Table):
                head = "".join(f"<th>{esc(h)}</th>" for h in block.headers)
                body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in block.rows)
                out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
            else:
                out.append(
                    f'<figure><img src="{_data_uri(block.path)}" alt="{esc(block.caption)}">'
                    f"<figcaption>{esc(block.caption)}</figcaption></figure>"
                )
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(title: str, sections: Sequence[Section], base: Path) -> str:
    """Render Markdown; figure links are relative to ``base`` (the folder the Markdown file is written to)."""
    out = [f"# {title}", ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Note):
                out += [f"_{block.text}_", ""]
            elif isinstance(block, Pre):
                fence = "````" if "```" in block.text else "```"
                out += [fence, block.text.rstrip("\n"), fence, ""]
            elif isinstance(block, Link):
                rel = Path(os.path.relpath(block.path, base)).as_posix()
                out += [f"[{block.path.name}]({rel}): {block.text}", ""]
            elif isinstance(block, Table):
                out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
                out.append("|" + "---|" * len(block.headers))
                out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
                out.append("")
            else:
                rel = Path(os.path.relpath(block.path, base)).as_posix()
                out += [f"![{block.caption}]({rel})", "", f"*{block.caption}*", ""]
    return "\n".join(out)
