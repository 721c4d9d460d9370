"""The front door stays short and every link in the manual leads somewhere."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_README_LINES = 200
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _relative_links(path: Path) -> list[tuple[str, Path]]:
    """(link text, the file or directory it points to) for every relative markdown link in `path`."""
    found = []
    for target in LINK.findall(path.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a URL or an anchor in the same page
        found.append((target, (path.parent / target.split("#")[0]).resolve()))
    return found


def test_readme_is_short_and_gives_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert text.count("\n") <= MAX_README_LINES
    assert "bash scripts/setup.sh && python3 run_bench.py\n" in text
    assert "bash scripts/setup.sh && python3 -m pytest\n" in text
    assert "bash scripts/setup.sh && python3 -m pytest" in (ROOT / ".ci" / "run").read_text()


def test_every_relative_link_in_the_readme_and_docs_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) >= 9
    broken = [f"{page.relative_to(ROOT)}: {target}" for page in pages for target, path in _relative_links(page)
              if not path.exists()]
    assert broken == []


def test_the_link_check_sees_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[there](there.md) [web](https://example.org) [here](#top) [gone](missing/file.md)\n")
    (tmp_path / "there.md").write_text("")
    assert [t for t, p in _relative_links(page) if not p.exists()] == ["missing/file.md"]


def test_the_readme_maps_every_doc():
    readme = (ROOT / "README.md").read_text()
    assert [p.name for p in sorted((ROOT / "docs").glob("*.md")) if f"docs/{p.name}" not in readme] == []
