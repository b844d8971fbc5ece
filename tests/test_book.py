"""The book: every chapter of _toc.yml executes (smoke profile, cached in runs/smoke), nbval
re-checks the marked outputs, the HTML builds with warnings as errors, and a headless
Chromium sees each page render: title, equations typeset by the local MathJax, images
loaded, captions on figures, no error output.

The book is built once per session through `lantk.runner.build_book` (the same code as
`make book`), so an unchanged chapter is not executed again.
"""

import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from lantk import runner

ROOT = Path(__file__).resolve().parents[1]
PROFILE = "smoke"
CHROMIUM = os.environ.get("LANTK_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("LANTK_CHROMEDRIVER", "/usr/bin/chromedriver")

pytestmark = pytest.mark.book


def _toc_sources():
    return [runner.chapter_source(e, ROOT) for e in runner.toc_chapters(ROOT)]


def _title(source: Path) -> str:
    """The page title: the chapter's first level-1 heading, MyST roles stripped."""
    for line in source.read_text().splitlines():
        if line.startswith("# "):
            t = line[2:].strip()
            t = re.sub(r"\{[a-z:]+\}`([^`]*)`", r"\1", t)
            return re.sub(r"\$([^$]*)\$", r"\1", t)
    raise AssertionError(f"{source} has no '# title' line")


@pytest.fixture(scope="session")
def smoke_book():
    """Execute (cached) and build the smoke book once for the session."""
    out = runner.build_book(PROFILE, root=ROOT, progress=False)
    return out


@pytest.fixture(scope="session")
def html_dir(smoke_book) -> Path:
    return Path(smoke_book["index"]).parent


def _page(html_dir: Path, source: Path) -> Path:
    return html_dir / source.relative_to(ROOT).with_suffix(".html")


def test_toc_lists_intro_first_and_execution_last():
    entries = runner.toc_chapters(ROOT)
    assert entries[0] == "book/intro" and entries[-1] == "book/execution"
    for src in _toc_sources():
        nb = runner.read_chapter(src)
        if runner.is_executable(nb):
            params = runner.chapter_parameters(nb)
            assert "profile" in params and "output_dir" in params, src
            assert params["output_dir"] == "." and params["profile"] == "default", src


def test_config_for_a_direct_jupyter_book_build():
    import yaml

    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    ex = cfg["execute"]
    assert ex["execute_notebooks"] == "cache" and ex["raise_on_error"] is True
    assert ex["timeout"] >= 600
    assert cfg["only_build_toc_files"] is True
    for pattern in ("lantk", "tests", ".venv", ".oracle-venv", ".pytest_cache", "runs",
                    "_build", "benchmarks"):
        assert pattern in cfg["exclude_patterns"]
    assert cfg["bibtex_bibfiles"] == ["book/references.bib"]
    assert "sphinxcontrib.bibtex" in cfg["sphinx"]["extra_extensions"]


def test_every_chapter_ran_and_the_html_exists(smoke_book, html_dir):
    runs = {r.chapter: r for r in smoke_book["runs"]}
    for src in _toc_sources():
        assert _page(html_dir, src).is_file(), src
        if runner.is_executable(runner.read_chapter(src)):
            rec = runs[src.stem].record
            assert rec["status"] == "ok" and rec["profile"] == PROFILE
            assert (ROOT / "runs" / PROFILE / src.stem / "default" / f"{src.stem}.ipynb").is_file()
    assert (html_dir / "_static" / "mathjax" / "tex-chtml.js").is_file()  # no CDN


def test_execution_chapter_lists_every_other_chapter(smoke_book, html_dir):
    names = [s.stem for s in _toc_sources()
             if runner.is_executable(runner.read_chapter(s)) and s.stem != "execution"]
    rows = runner.execution_rows(ROOT / "runs" / PROFILE, exclude=["execution"])
    assert [r["chapter"] for r in rows if r["chapter"] in names] == names
    text = _page(html_dir, ROOT / "book" / "execution.md").read_text()
    assert "<table" in text  # the Markdown output is rendered as a table
    for n in names:
        assert f"<td><p>{n}</p></td>" in text, n


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("href", "src"):
            if a.get(key) and tag in ("a", "img", "script", "link"):
                self.refs.append(a[key])


def test_internal_links_and_assets_resolve(html_dir):
    """Cross-references between chapters, citations, images and scripts all point at files
    that exist in the build (nothing is fetched from a CDN to render a page)."""
    for src in _toc_sources():
        page = _page(html_dir, src)
        parser = _Links()
        parser.feed(page.read_text())
        for ref in parser.refs:
            u = urlparse(html.unescape(ref))
            if u.scheme in ("http", "https", "mailto", "data", "javascript") or not u.path:
                continue
            target = (page.parent / unquote(u.path)).resolve()
            assert target.exists(), f"{page.name}: broken link {ref}"


def test_nbval_checks_the_marked_outputs(smoke_book):
    """nbval re-executes every executed notebook in this environment: no cell may fail, and
    the cells marked # NBVAL_CHECK_OUTPUT must print what the book shows."""
    notebooks = [str(r.notebook) for r in smoke_book["runs"]]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
           "--nbval-current-env", "--nbval-sanitize-with",
           str(ROOT / "tests" / "nbval_sanitize.cfg"), "--rootdir", str(ROOT), *notebooks]
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false")  # share a GPU politely
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout


# --------------------------------------------------------------------------- the browser
def _have_browser() -> bool:
    return Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()


@pytest.fixture(scope="module")
def browser():
    if not _have_browser():
        msg = (f"headless Chromium not found ({CHROMIUM}, {CHROMEDRIVER}): "
               "apt-get install -y chromium chromium-driver")
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile_dir = tempfile.mkdtemp(prefix="lantk-chromium-")
    opts = Options()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 "--disable-extensions", "--window-size=1280,1600",
                 f"--user-data-dir={profile_dir}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile_dir, ignore_errors=True)


_PAGE_STATE = """
const imgs = Array.from(document.images);
const outputs = Array.from(document.querySelectorAll('.cell_output img'));
return {
  title: (document.querySelector('main h1, article h1, h1') || {}).textContent || '',
  mathjax: (window.MathJax && MathJax.startup && MathJax.startup.promise) ? 1 : 0,
  equations: document.querySelectorAll('mjx-container').length,
  math_sources: document.querySelectorAll('.math, div.math, span.math').length,
  math_errors: document.querySelectorAll('mjx-merror').length,
  images: imgs.map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]),
  uncaptioned: outputs.filter(i => {
      const f = i.closest('figure');
      return !f || !f.querySelector('figcaption') ||
             !f.querySelector('figcaption').textContent.trim();
  }).map(i => i.getAttribute('src')),
  errors: document.querySelectorAll(
      '.output.error, .output.traceback, .cell_output .traceback, div.highlight-ipythontb, '
      + '#papermill-error-cell').length,
  text: document.body.innerText,
};
"""


def _wait_for_page(driver, timeout=30.0):
    """Wait until MathJax has typeset the page (its startup promise resolved); pages
    without mathematics do not load MathJax at all."""
    driver.set_script_timeout(timeout)
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const start = Date.now();
        if (!document.querySelector('script[src*="mathjax"]')) { done(true); return; }
        (function poll() {
          const mj = window.MathJax;
          if (mj && mj.startup && mj.startup.promise) {
            mj.startup.promise.then(() => done(true), () => done(false));
          } else if (Date.now() - start > 20000) { done(false); }
          else { setTimeout(poll, 100); }
        })();
    """)


@pytest.mark.parametrize("entry", runner.toc_chapters(ROOT))
def test_page_renders_in_chromium(entry, browser, html_dir):
    src = runner.chapter_source(entry, ROOT)
    page = _page(html_dir, src)
    browser.get(page.as_uri())
    _wait_for_page(browser)
    deadline = time.time() + 10
    state = browser.execute_script(_PAGE_STATE)
    while state["math_sources"] and not state["equations"] and time.time() < deadline:
        time.sleep(0.25)
        state = browser.execute_script(_PAGE_STATE)

    title = _title(src)
    def plain(text):  # Sphinx typesets ' as a curly quote
        return text.replace("\u2019", "'").replace("\u2018", "'")

    assert plain(state["title"].strip().rstrip("#¶").strip()) == title, (state["title"], title)
    assert plain(browser.title).startswith(title), (browser.title, title)
    if runner.is_executable(runner.read_chapter(src)):
        assert state["equations"] >= 1, f"{entry}: no equation typeset by MathJax"
    assert state["math_errors"] == 0, f"{entry}: MathJax could not typeset an equation"
    for img_src, complete, width in state["images"]:
        assert complete and width > 0, f"{entry}: image {img_src} did not load"
    assert not state["uncaptioned"], f"{entry}: figures without a caption: {state['uncaptioned']}"
    assert state["errors"] == 0, f"{entry}: error output on the page"
    for bad in ("Traceback (most recent call last)", "An Exception was encountered",
                "Error in cell", "could not find bibtex key"):
        assert bad not in state["text"], f"{entry}: {bad!r} on the page"
