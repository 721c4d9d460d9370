"""report.md (or any of our markdown pages) as ONE self-contained HTML5 file: an inline style, no
JavaScript, nothing the browser fetches on load. Figures are inlined: a `![..](x.png)` whose sibling
`x.svg` exists becomes that SVG, sanitized, else the PNG as a base64 data: URI.

A results directory is untrusted data: every piece of text is HTML-escaped; an inlined SVG keeps only
SVG elements (no script, foreignObject, animation, metadata), no on* attribute, no href or url() that
points anywhere but inside itself; an image path must resolve inside `base_dir`; whatever fails one
of these becomes a visible note. A Content-Security-Policy meta tag (no scripts, no fetches but data:
images) backs all of this up in the browser.

The markdown understood is what our reports use: ATX headings, paragraphs, `-`/`*` and numbered lists,
pipe tables, fenced code blocks, `code`, **bold**, *emphasis*, links and images.
"""

from __future__ import annotations

import base64
import html
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.contract.files import make_dir, write_text_atomic

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1b1b1b; margin: 2em auto;
       max-width: 1200px; padding: 0 1.5em; }
h1, h2, h3 { line-height: 1.2; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 1.6em; }
code, pre { font: 13px/1.4 ui-monospace, "DejaVu Sans Mono", monospace; background: #f3f3f3; }
code { padding: 0 .25em; border-radius: 3px; } pre { padding: .8em; overflow-x: auto; }
.table { overflow-x: auto; } table { border-collapse: collapse; margin: .6em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: .25em .55em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } tr:nth-child(even) td { background: #fafafa; }
.figure { display: block; margin: 1em 0; } .figure svg, .figure img { max-width: 100%; height: auto; }
.note { display: inline-block; color: #8a1c00; background: #fff3ef; border: 1px solid #f0c3b5; padding: .2em .5em; }
"""

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
#: SVG elements dropped with everything inside them: code, foreign content, animation (it can set an
#: href), metadata, and anything that embeds another document.
DROPPED = {"script", "foreignobject", "animate", "set", "animatemotion", "animatetransform", "metadata",
           "iframe", "object", "embed", "audio", "video", "handler", "listener"}
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif"}
INLINE = re.compile(r"`(?P<code>[^`]+)`"
                    r"|!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)\)"
                    r"|\[(?P<text>[^\]]+)\]\((?P<href>[^)\s]+)\)"
                    r"|\*\*(?P<bold>.+?)\*\*"
                    r"|(?<![\w*])\*(?P<em>[^*\s][^*]*?)\*(?![\w*])")
URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)


class _Page:
    """What one conversion needs besides the text: where images live, and a counter for SVG id prefixes."""

    def __init__(self, base_dir: Path):
        self.base_dir = Path(base_dir)
        self.figures = 0


def _note(text: str) -> str:
    return f'<span class="note">{html.escape(text)}</span>'


# ---- SVG ---------------------------------------------------------------------------------------------

def _safe_css(text: str) -> bool:
    """No @import, and every url() points inside the document (#id)."""
    return "@import" not in text.lower() and all(m.group(2).strip().startswith("#") for m in URL.finditer(text))


def _local(name: str) -> tuple[str, str]:
    """(namespace, local name) of an ElementTree tag or attribute key."""
    if name.startswith("{"):
        ns, _, local = name[1:].partition("}")
        return ns, local
    return "", name


def _clean_attributes(element, prefix: str) -> None:
    for key in list(element.attrib):
        ns, local = _local(key)
        value = element.attrib.pop(key)
        name = local.lower()
        if name.startswith("on") or ns not in ("", XLINK_NS):
            continue
        if name == "href":
            if not value.startswith("#"):
                continue
            value = "#" + prefix + value[1:]
        elif "url(" in value.lower() or name == "style":
            if not _safe_css(value):
                continue
            value = URL.sub(lambda m: f"url(#{prefix}{m.group(2).strip()[1:]})", value)
        if name == "id":
            value = prefix + value
        element.set("xlink:href" if ns == XLINK_NS else local, value)


def _clean_tree(element, prefix: str) -> None:
    """Drop unsafe children (recursively), strip namespaces, rewrite ids and internal references."""
    for child in list(element):
        ns, local = _local(child.tag) if isinstance(child.tag, str) else ("", "")
        if ns != SVG_NS or local.lower() in DROPPED or (local == "style" and not _safe_css(child.text or "")):
            element.remove(child)
            continue
        _clean_tree(child, prefix)
    if isinstance(element.tag, str):
        element.tag = _local(element.tag)[1]
        _clean_attributes(element, prefix)


def sanitize_svg(text: str, prefix: str = "") -> str:
    """The SVG document `text` as an inline <svg> element with nothing in it that runs or fetches;
    ids get `prefix` so that several figures on one page keep theirs apart. Raises ValueError when
    `text` is not an SVG document (or declares entities)."""
    if "<!ENTITY" in text.upper():
        raise ValueError("declares XML entities")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise ValueError(f"not well-formed XML ({error})") from None
    if root.tag != f"{{{SVG_NS}}}svg":
        raise ValueError("its root element is not <svg>")
    _clean_tree(root, prefix)
    return ET.tostring(root, encoding="unicode")


# ---- images and links --------------------------------------------------------------------------------

def _inside(page: _Page, src: str):
    """The file `src` names under base_dir, or None for an absolute path, a URL or a ../ escape."""
    if not src or src.startswith(("/", "\\")) or ":" in src or "\\" in src:
        return None
    base = page.base_dir.resolve()
    path = (base / src).resolve()
    return path if path.is_relative_to(base) else None


def _image(page: _Page, alt: str, src: str) -> str:
    path = _inside(page, src)
    if path is None:
        return _note(f"image {src} not shown: its path must stay inside the report's directory")
    svg = path if path.suffix.lower() == ".svg" else path.with_suffix(".svg")
    if svg.is_file():
        page.figures += 1
        try:
            inline = sanitize_svg(svg.read_text(encoding="utf-8", errors="replace"), prefix=f"f{page.figures}-")
        except ValueError as error:
            return _note(f"figure {src} not shown: {svg.name} {error}")
        return f'<span class="figure" role="img" aria-label="{html.escape(alt)}">{inline}</span>'
    mime = IMAGE_TYPES.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return _note(f"image {src} not found" if mime else f"image {src} not shown: not a PNG, JPEG, GIF or SVG")
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<span class="figure"><img alt="{html.escape(alt)}" src="data:{mime};base64,{data}"></span>'


def _link(href: str, inner: str) -> str:
    """A link the reader may follow (nothing loads it): same page, relative files, http(s) and mailto."""
    scheme = href.split(":", 1)[0].lower() if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", href) else ""
    if scheme not in ("", "http", "https", "mailto") or href.startswith("//"):
        return inner
    return f'<a href="{html.escape(href)}">{inner}</a>'


def inline(text: str, page: _Page) -> str:
    """One line of markdown's inline syntax as HTML; everything else escaped."""
    out, at = [], 0
    for m in INLINE.finditer(text):
        out.append(html.escape(text[at:m.start()]))
        at = m.end()
        if m.group("code") is not None:
            out.append(f"<code>{html.escape(m.group('code'))}</code>")
        elif m.group("src") is not None:
            out.append(_image(page, m.group("alt"), m.group("src")))
        elif m.group("href") is not None:
            out.append(_link(m.group("href"), inline(m.group("text"), page)))
        elif m.group("bold") is not None:
            out.append(f"<strong>{inline(m.group('bold'), page)}</strong>")
        else:
            out.append(f"<em>{inline(m.group('em'), page)}</em>")
    return "".join(out) + html.escape(text[at:])


# ---- blocks ------------------------------------------------------------------------------------------

def _slug(text: str, used: set) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    slug, n = base, 1
    while slug in used:
        n += 1
        slug = f"{base}-{n}"
    used.add(slug)
    return slug


def _cells(line: str) -> list[str]:
    line = line.strip()
    line = line[1:] if line.startswith("|") else line
    line = line[:-1] if line.endswith("|") and not line.endswith("\\|") else line
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)]


def _table(lines: list[str], page: _Page) -> str:
    head = "".join(f"<th>{inline(c, page)}</th>" for c in _cells(lines[0]))
    body = "".join("<tr>" + "".join(f"<td>{inline(c, page)}</td>" for c in _cells(row)) + "</tr>\n"
                   for row in lines[2:])
    return f'<div class="table"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table></div>'


LIST_ITEM = re.compile(r"^\s*(?:([-*+])|(\d+)[.)])\s+(.*)$")
TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def _list(lines: list[str], page: _Page) -> str:
    tag = "ol" if LIST_ITEM.match(lines[0]).group(2) else "ul"
    items, current = [], None
    for line in lines:
        m = LIST_ITEM.match(line)
        if m:
            current = [m.group(3)]
            items.append(current)
        else:
            current.append(line.strip())
    body = "".join(f"<li>{inline(' '.join(item), page)}</li>\n" for item in items)
    return f"<{tag}>\n{body}</{tag}>"


def _blocks(lines: list[str], page: _Page) -> list[str]:
    """Each block of the markdown as HTML, in order."""
    out, used, i = [], set(), 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.lstrip().startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith("```"):
                j += 1
            out.append(f"<pre><code>{html.escape(chr(10).join(lines[i + 1:j]))}</code></pre>")
            i = j + 1
        elif m := re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line):
            level, text = len(m.group(1)), m.group(2)
            out.append(f'<h{level} id="{_slug(text, used)}">{inline(text, page)}</h{level}>')
            i += 1
        elif line.lstrip().startswith("|") and i + 1 < len(lines) and TABLE_RULE.match(lines[i + 1]):
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            out.append(_table(lines[i:j], page))
            i = j
        elif LIST_ITEM.match(line):
            j = i + 1
            while j < len(lines) and lines[j].strip() and (LIST_ITEM.match(lines[j]) or lines[j][:1] in " \t"):
                j += 1
            out.append(_list(lines[i:j], page))
            i = j
        else:
            j = i + 1
            while j < len(lines) and lines[j].strip() and not _starts_block(lines, j):
                j += 1
            out.append(f"<p>{'<br>'.join(inline(x.strip(), page) for x in lines[i:j])}</p>")
            i = j
    return out


def _starts_block(lines: list[str], j: int) -> bool:
    line = lines[j]
    return bool(line.lstrip().startswith(("```", "#", "|")) or LIST_ITEM.match(line))


def markdown_to_html_page(markdown_text: str, base_dir: Path, title: str) -> str:
    """`markdown_text` as one self-contained HTML5 document titled `title`; images are read from (and
    must stay inside) `base_dir`."""
    page = _Page(base_dir)
    body = "\n".join(_blocks(markdown_text.replace("\r\n", "\n").split("\n"), page))
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def write_html_page(markdown_path: Path, html_path: Path, title: str) -> Path:
    """The markdown file as a self-contained HTML page at `html_path` (written whole); images are
    resolved against the markdown file's directory; `html_path`'s directory is made if missing."""
    markdown_path, html_path = Path(markdown_path), Path(html_path)
    text = markdown_path.read_text(encoding="utf-8", errors="replace")
    make_dir(html_path.parent)
    write_text_atomic(html_path, markdown_to_html_page(text, markdown_path.parent, title))
    return html_path
