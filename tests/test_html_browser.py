"""`analyze --html`'s page in a real browser: headless Chromium loads it with no console message (the page
has no script, so any message is an error: a blocked fetch, a CSP violation, a script that got through) and
renders text, tables and coloured figures, not a blank page."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(BROWSER is None,
                                reason="chromium not installed: apt-get install -y chromium (.ci/run installs it)")


def _screenshot(page: Path, png: Path, height: int = 4800) -> list[str]:
    """Loads `page`, writes its screenshot, returns the console lines Chromium logged (one per message,
    any level: `...:INFO:CONSOLE:N] "message", source: URL (line)`)."""
    done = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
                           f"--user-data-dir={png.parent / 'chromium-profile'}", f"--screenshot={png}",
                           f"--window-size=1280,{height}", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


def test_the_console_check_sees_a_script_error(tmp_path):
    """The check below can fail: a page with a deliberate script error logs a console line."""
    page = tmp_path / "error.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction();</script></body></html>")
    console = _screenshot(page, tmp_path / "error.png", height=300)
    assert any("Uncaught ReferenceError: undefinedFunction is not defined" in line for line in console), console


def test_the_report_page_renders_in_chromium(tmp_path):
    import matplotlib.image

    from bench.cli.main import main

    directory = tmp_path / "quick"
    shutil.copytree(ROOT / "results" / "cpu" / "quick-epyc-2threads", directory,
                    ignore=shutil.ignore_patterns("figures", "report.*", "*.csv"), dirs_exist_ok=False)
    for name in ("runs.csv", "repeats.csv"):
        shutil.copy(ROOT / "results" / "cpu" / "quick-epyc-2threads" / name, directory / name)
    assert main(["analyze", str(directory), "--html"]) == 0
    png = tmp_path / "page.png"
    console = _screenshot(directory / "report.html", png)
    assert console == []
    assert png.is_file()
    pixels = matplotlib.image.imread(png)[..., :3]
    non_white = (pixels < 0.95).any(axis=2).mean()
    coloured = ((pixels.max(axis=2) - pixels.min(axis=2)) > 0.2).sum()
    assert non_white > 0.02, f"only {non_white:.2%} of the page is not white"
    assert coloured > 2000, f"only {coloured} coloured pixels: the figures did not render"
