"""Markdown reports as one self-contained HTML file: tables styled, figures embedded.

Python-Markdown (with its tables extension) converts the text; each local image the report
links is embedded as a base64 data URI, so the HTML file can be mailed or attached alone.

Example:
    >>> html = markdown_to_html("# Title\\n\\n| a | b |\\n|---|---|\\n| 1 | 2 |\\n", title="t")
    >>> "<table>" in html and "<h1>Title</h1>" in html
    True
"""

from __future__ import annotations

import base64
import html as html_lib
import mimetypes
import os
import re
from pathlib import Path

import markdown

__all__ = ["markdown_to_html"]

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr:nth-child(even) { background: #f6f6f6; }
img { max-width: 100%; border: 1px solid #eee; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""

_IMAGE = re.compile(r'<img alt="([^"]*)" src="([^"]+)"')


def markdown_to_html(text: str, *, base: str | os.PathLike[str] | None = None, title: str = "report") -> str:
    """Convert a markdown report to a standalone HTML page.

    Args:
        text: The markdown.
        base: Folder the report's relative image paths start from; their files are embedded.
            None: images are left as links.
        title: The page title.

    Returns:
        The HTML page. Images whose file is missing stay as links (the browser shows their
        alt text), so a report never fails for a figure that was not drawn.
    """
    body = markdown.markdown(text, extensions=["tables"], output_format="html")
    if base is not None:
        folder = Path(base)

        def embed(match: re.Match[str]) -> str:
            alt, src = match.group(1), match.group(2)
            path = folder / src
            if src.startswith(("data:", "http:", "https:")) or not path.is_file():
                return match.group(0)
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            return f'<img alt="{alt}" src="data:{kind};base64,{data}"'

        body = _IMAGE.sub(embed, body)
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html_lib.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")
