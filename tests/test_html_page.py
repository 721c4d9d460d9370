"""analysis.html_page: our markdown as one self-contained HTML page, safe against a hostile results directory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from analysis.html_page import markdown_to_html_page, sanitize_svg, write_html_page

PNG_1x1 = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360"
                        "f8cfc0f01f0005000201a5f9d1e30000000049454e44ae426082")
SVG = ('<?xml version="1.0" encoding="utf-8" standalone="no"?>\n'
       '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
       '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10">'
       '<metadata><x>meta</x></metadata><defs><clipPath id="c1"><rect width="5" height="5"/></clipPath>'
       '<path id="m1" d="M0 0L1 1"/></defs>'
       '<g clip-path="url(#c1)"><use xlink:href="#m1" x="1"/><rect width="3" height="3" fill="red"/></g>'
       '<text x="1" y="9">S = 10</text></svg>')


def _loads(page: str) -> list[str]:
    """Every src/href a browser would fetch on load (a's href only when followed; data: URIs are no fetch)."""
    fetched = re.findall(r'<(?!a\b)\w+[^>]*\s(?:src|href|xlink:href)="([^"]*)"', page)
    return [u for u in fetched if not u.startswith(("#", "data:"))]


def test_the_markdown_our_reports_use(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(PNG_1x1)
    (tmp_path / "figures" / "a.svg").write_text(SVG)
    (tmp_path / "figures" / "b.png").write_bytes(PNG_1x1)
    text = ("# Report\n\n**Machine:** `cpu` & more.\n\n## Table 1\n\n| a | b |\n| --- | --- |\n| 1 | x < 2 |\n\n"
            "- one [link](other/README.md)\n- two\n\n1. first\n2. second\n\n```\ncode <b>\n```\n\n"
            "![a](figures/a.png) ([svg](figures/a.svg))\n\n![b](figures/b.png)\n\n![c](figures/missing.png)\n")
    page = markdown_to_html_page(text, tmp_path, "a & b")
    assert page.startswith("<!DOCTYPE html>") and "<title>a &amp; b</title>" in page
    assert '<h1 id="report">Report</h1>' in page and '<h2 id="table-1">' in page
    assert "<strong>Machine:</strong> <code>cpu</code> &amp; more." in page
    assert "<th>a</th><th>b</th>" in page and "<td>x &lt; 2</td>" in page
    assert '<ul>\n<li>one <a href="other/README.md">link</a></li>' in page and "<ol>" in page
    assert "<pre><code>code &lt;b&gt;</code></pre>" in page
    assert page.count("<svg") == 1 and "<metadata" not in page and 'id="f1-c1"' in page
    assert 'clip-path="url(#f1-c1)"' in page and 'xlink:href="#f1-m1"' in page
    assert 'src="data:image/png;base64,' in page
    assert 'class="note">image figures/missing.png not found' in page
    assert "<script" not in page and _loads(page) == []


def test_hostile_text_is_escaped(tmp_path):
    run_id = "<script>alert(1)</script>"
    text = (f"# report: {run_id}\n\n| run_id |\n| --- |\n| {run_id} |\n\n- {run_id}\n\n`{run_id}`\n\n"
            f"[click](javascript:alert(1)) [x\"onmouseover=\"alert(1)](a.md\"onclick=\"x)\n")
    page = markdown_to_html_page(text, tmp_path, run_id)
    assert "<script" not in page.lower() and "javascript:" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 5
    assert not re.search(r"<[^>]*\son\w+=", page)


def test_a_hostile_svg_is_sanitized(tmp_path):
    hostile = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" onload="alert(1)">'
               '<script>alert(2)</script><foreignObject><body xmlns="http://www.w3.org/1999/xhtml">'
               '<script>alert(3)</script></body></foreignObject>'
               '<a href="javascript:alert(4)"><rect onclick="alert(5)" ONMOUSEOVER="x" width="1" height="1"/></a>'
               '<image xlink:href="http://evil.example/x.png" href="file:///etc/passwd"/>'
               '<rect style="fill:url(http://evil.example/p)" fill="url(https://evil.example/#g)" width="2"/>'
               '<style>@import url(http://evil.example/c.css);</style>'
               '<set attributeName="href" to="javascript:alert(6)"/><text>&lt;script&gt;</text></svg>')
    (tmp_path / "fig.svg").write_text(hostile)
    (tmp_path / "fig.png").write_bytes(PNG_1x1)
    page = markdown_to_html_page("![fig](fig.png)\n", tmp_path, "t")
    lowered = page.lower()
    for bad in ("<script", "alert", "javascript", "onload", "onclick", "onmouseover", "foreignobject", "evil",
                "@import", "file:", "<set"):
        assert bad not in lowered, bad
    assert "<svg" in page and "&lt;script&gt;" in page and _loads(page) == []


def test_an_svg_that_does_not_parse_or_declares_entities_becomes_a_note(tmp_path):
    (tmp_path / "broken.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><g></svg>")
    (tmp_path / "lol.svg").write_text('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaa">]>'
                                      '<svg xmlns="http://www.w3.org/2000/svg"><text>&a;</text></svg>')
    (tmp_path / "html.svg").write_text("<html><script>alert(1)</script></html>")
    page = markdown_to_html_page("![a](broken.png) ![b](lol.png) ![c](html.svg)\n", tmp_path, "t")
    assert page.count('class="note">figure') == 3 and "<svg" not in page and "<script" not in page
    with pytest.raises(ValueError, match="not well-formed"):
        sanitize_svg("<svg")


def test_image_paths_must_stay_inside_base_dir(tmp_path):
    base = tmp_path / "report"
    base.mkdir()
    (tmp_path / "secret.png").write_bytes(PNG_1x1)
    (tmp_path / "secret.svg").write_text(SVG)
    (base / "link.png").symlink_to(tmp_path / "secret.png")
    text = ("![a](../secret.png)\n\n![b](" + str(tmp_path / "secret.png") + ")\n\n![c](link.png)\n\n"
            "![d](http://example.com/x.png)\n\n![e](file:///etc/passwd)\n\n![f](figures/../../secret.png)\n")
    page = markdown_to_html_page(text, base, "t")
    assert page.count("must stay inside the report&#x27;s directory") == 6
    assert "<svg" not in page and "data:image" not in page and _loads(page) == []


def test_write_html_page_reads_images_beside_the_markdown(tmp_path):
    (tmp_path / "history.md").write_text("# History\n\n![a](a.png)\n")
    (tmp_path / "a.png").write_bytes(PNG_1x1)
    out = write_html_page(tmp_path / "history.md", tmp_path / "out" / "history.html", "History")
    assert out == tmp_path / "out" / "history.html"
    assert "data:image/png;base64," in out.read_text()


def test_analyze_html_writes_report_html(tmp_path):
    from bench.cli.main import main

    directory = tmp_path / "run"
    src = Path(__file__).resolve().parents[1] / "results" / "cpu" / "quick-epyc-2threads"
    directory.mkdir()
    for name in ("runs.csv", "repeats.csv", "meta.json"):
        (directory / name).write_bytes((src / name).read_bytes())
    assert main(["analyze", str(directory), "--html"]) == 0
    page = (directory / "report.html").read_text()
    assert page.count("<svg") >= 2 and "<title>bnn-bench report: run</title>" in page and _loads(page) == []
