"""Every built chapter typesets its equations in a real headless Chromium with the network off.

The pages are loaded from _build/html as file:// URLs; a proxy at a closed local port and the
flags below make any http(s) request fail, so MathJax can only come from the bundled copy in
_static. ``--dump-dom`` prints the DOM after ``--virtual-time-budget`` ms of (virtual) idle
time, by which MathJax has replaced each ``\\(…\\)`` / ``\\[…\\]`` by an ``mjx-container``.
Run after the book is built (``make browser``); not part of the unit suite.
"""

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

HTML = Path(__file__).resolve().parents[1] / "_build" / "html"
PAGES = sorted((HTML / "book").glob("*.html")) + [HTML / "index.html"]
OFFLINE_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--proxy-server=127.0.0.1:9",  # the discard port, closed: every remote fetch fails
    "--proxy-bypass-list=<-loopback>",
    "--virtual-time-budget=20000",
]
RAW_TEX = ("\\[", "\\(", "$$")


class VisibleText(HTMLParser):
    """Text a reader sees: outside scripts, styles, code listings and MathJax's own output."""

    HIDDEN = {"script", "style", "pre", "code", "textarea", "mjx-container", "noscript"}

    def __init__(self) -> None:
        super().__init__()
        self.depth, self.parts, self.math_containers = 0, [], 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.math_containers += tag == "mjx-container"
        self.depth += tag in self.HIDDEN

    def handle_endtag(self, tag: str) -> None:
        self.depth -= tag in self.HIDDEN

    def handle_data(self, data: str) -> None:
        if self.depth == 0:
            self.parts.append(data)


def _browser() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise RuntimeError("no Chromium found: apt-get install chromium chromium-driver (.ci/run does)")


def _math_in_source(page: Path) -> int:
    """Math elements Sphinx wrote (``class="math …"``), each to be typeset."""
    return page.read_text(encoding="utf-8").count('class="math')


def _rendered(page: Path) -> VisibleText:
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run(
            [_browser(), *OFFLINE_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=180,
        )
    if run.returncode != 0 or "<html" not in run.stdout:
        raise RuntimeError(f"chromium failed on {page.name}: {run.stderr[-2000:]}")
    parser = VisibleText()
    parser.feed(run.stdout)
    return parser


def test_book_is_built():
    assert PAGES and all(p.exists() for p in PAGES), f"no built book under {HTML}: make book-check"
    bundled = HTML / "_static" / "mathjax" / "tex-chtml.js"
    assert bundled.exists(), "MathJax is not bundled into _static"
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        assert "cdn.jsdelivr.net/npm/mathjax" not in text, page.name


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_equations_typeset_offline(page):
    expected = _math_in_source(page)
    seen = _rendered(page)
    assert seen.math_containers >= expected, (
        f"{page.name}: {seen.math_containers} typeset of {expected} math elements"
    )
    visible = "".join(seen.parts)
    leftovers = [d for d in RAW_TEX if d in visible]
    assert not leftovers, f"{page.name}: raw TeX delimiters {leftovers} in the visible text"
