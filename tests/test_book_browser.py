"""The built book in a real browser, with no network: every page of ``_toc.yml`` reads offline.

The module builds the book once (``jupyter-book build .``, quick with a warm execution cache),
serves ``_build/html`` on localhost and opens each page in headless Chromium through Playwright.
Every request that does not go to that server is blocked and counted as a failure, so a page that
still needs a CDN (MathJax, RequireJS, the widget manager, fonts) fails here. Per page it checks:
no JavaScript errors, every request to the local server succeeds, images in the article load,
equations are typeset by MathJax 3, every link in the left sidebar resolves, no cell output holds
a traceback unless the cell is tagged ``raises-exception``, and saved widget state renders as
widgets. It saves a full-page screenshot of the root page and of the first chapter of each part
under ``_build/screenshots/``.

Skipped, with the reason, when ``/usr/bin/chromium`` or the ``playwright`` package is missing.
``scripts/web_assets.sh`` must have run first (it puts MathJax and friends in ``web/site/vendor``).
``ODERNN_BOOK_ROOT`` names another book folder to test (default: this repository).
"""

from __future__ import annotations

import filecmp
import functools
import http.server
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
REPO = Path(__file__).resolve().parents[1]
BOOK = Path(os.environ.get("ODERNN_BOOK_ROOT", REPO)).resolve()
HTML = BOOK / "_build" / "html"
SCREENSHOTS = BOOK / "_build" / "screenshots"
WAIT_MS = 20_000
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
TRACEBACK = "Traceback (most recent call last)"
# Console errors that the theme and extensions pinned by jupyter-book 1.0.4 raise on every page of
# any book, harmless to a reader, so not counted: sphinx-thebe 0.3.1 puts its inline config script
# in the page twice (the second copy re-declares its constants), and pydata-sphinx-theme 0.17.1
# logs an error on a first visit, while localStorage holds no colour mode yet.
KNOWN_THIRD_PARTY_ERRORS = (
    "Identifier 'THEBE_JS_URL' has already been declared",
    "Got invalid theme mode: . Resetting to auto.",
)

pytestmark = [
    pytest.mark.skipif(sync_playwright is None,
                       reason="the Python package playwright is not installed (pip install playwright==1.65.2)"),
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason=f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"),
]


def toc_pages(toc_file: Path) -> tuple[list[str], set[str]]:
    """Read the pages of a Jupyter Book ``_toc.yml``.

    Args:
        toc_file: The ``_toc.yml`` of a ``jb-book``.

    Returns:
        The docnames in reading order (root first, then every chapter and section), and the
        docnames to screenshot: the root and the first chapter of each part.
    """
    toc = yaml.safe_load(toc_file.read_text())

    def walk(entries: list[dict]) -> list[str]:
        names = []
        for entry in entries or []:
            if "file" in entry:
                names.append(str(Path(entry["file"]).with_suffix("")))
            names += walk(entry.get("sections", []))
        return names

    root = str(Path(toc["root"]).with_suffix(""))
    pages, shots = [root], {root}
    for part in toc.get("parts", []):
        chapters = walk(part.get("chapters", []))
        pages += chapters
        shots.update(chapters[:1])
    pages += walk(toc.get("chapters", []))
    return pages, shots


PAGES, SCREENSHOT_PAGES = toc_pages(BOOK / "_toc.yml")


def build_book(root: Path) -> None:
    """Build the book in ``root`` with the ``jupyter-book`` beside this interpreter.

    Args:
        root: The folder with ``_config.yml`` and ``_toc.yml``.

    Raises:
        pytest.fail: The web assets are missing or the build exits non-zero.
    """
    vendor = root / "web" / "site" / "vendor"
    if not (vendor / "mathjax").is_dir():
        pytest.fail(f"{vendor} is missing: run `bash scripts/web_assets.sh` before building the book")
    env = dict(os.environ)
    env.setdefault("ODERNN_BENCHMARKS_DIR", str(REPO.parent / "shared/data/nonlinear_benchmarks_cache"))
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    for options in ([], ["--all"]):
        done = subprocess.run([str(jupyter_book), "build", ".", *options], cwd=root, env=env,
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"jupyter-book build failed ({done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
        if not stale_assets(vendor, root / "_build" / "html" / "vendor"):
            return
        # Sphinx copies html_extra_path only when some page is rebuilt; --all rebuilds every page
        # (from the execution cache, without running the notebooks again).
    pytest.fail(f"the built book's vendor/ still differs from {vendor} after a full rebuild: {stale_assets(vendor, root / '_build' / 'html' / 'vendor')[:5]}")


def stale_assets(source: Path, built: Path) -> list[str]:
    """Files of ``source`` that are missing from ``built`` or differ from their copy there."""
    return [str(f.relative_to(source)) for f in sorted(source.rglob("*")) if f.is_file()
            and not ((built / f.relative_to(source)).is_file() and filecmp.cmp(f, built / f.relative_to(source), shallow=False))]  # fmt: skip


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging every request to stderr."""

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def site():
    """Build the book once and serve ``_build/html`` on a free localhost port.

    Yields:
        The base URL, ending in ``/``.
    """
    build_book(BOOK)
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium with a fresh profile, shared by the module's tests.

    Yields:
        A Playwright ``BrowserContext``.
    """
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS, headless=True, viewport={"width": 1280, "height": 900})
        yield context
        context.close()


@functools.lru_cache(maxsize=None)
def http_status(url: str) -> int:
    """Fetch ``url`` from the local server.

    Args:
        url: An absolute ``http://127.0.0.1`` URL.

    Returns:
        The HTTP status code (200 when the page exists).
    """
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


class PageVisit:
    """One page opened offline, with everything it requested or logged.

    Args:
        context: The browser context.
        base: The local server's base URL; any other request is blocked and recorded.
    """

    def __init__(self, context, base: str):
        self.base = base
        self.outside: list[str] = []
        self.js_errors: list[str] = []
        self.failed: list[str] = []
        self.page = context.new_page()
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda exc: self._js_error(f"uncaught: {exc}"))
        self.page.on("console", self._console)
        self.page.on("requestfailed", self._request_failed)
        self.page.on("response", self._response)

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.base) or url.startswith("data:") or url.startswith("blob:"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort("blockedbyclient")

    def _js_error(self, text: str):
        if not any(known in text for known in KNOWN_THIRD_PARTY_ERRORS):
            self.js_errors.append(text)

    def _console(self, msg):
        if msg.type == "error":
            self._js_error(f"console: {msg.text}")

    def _request_failed(self, request):
        if request.url.startswith(self.base):
            self.failed.append(f"{request.url} ({request.failure})")

    def _response(self, response):
        if response.url.startswith(self.base) and response.status >= 400:
            self.failed.append(f"{response.url} (HTTP {response.status})")


def check_math(page) -> tuple[list[str], int]:
    """Check that MathJax 3 typeset every equation of the page.

    Args:
        page: A loaded Playwright page.

    Returns:
        The problems found, and the number of typeset equations (``mjx-container`` elements).
    """
    n_math = page.locator(".math").count()
    if n_math == 0:
        return [], 0
    try:
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                               timeout=WAIT_MS)
        page.evaluate("() => MathJax.startup.promise")
    except PlaywrightError as err:
        return [f"{n_math} .math nodes but MathJax 3 did not start: {err.message.splitlines()[0]}"], 0
    found = page.evaluate(r"""() => {
        const math = [...document.querySelectorAll('.math')];
        const raw = math.filter(el => {
            const copy = el.cloneNode(true);
            copy.querySelectorAll('mjx-container').forEach(c => c.remove());
            return /\\\(|\\\[|\$\$/.test(copy.textContent) || !el.querySelector('mjx-container');
        }).map(el => el.textContent.trim().slice(0, 80));
        // Serialised back to MathML, a TeX error is an <merror>, an undefined macro a red <mtext>.
        const mml = [...MathJax.startup.document.math].map(item => MathJax.startup.toMML(item.root));
        const errors = mml.filter(m => m.includes('<merror') || /<mtext mathcolor="red">\\/.test(m));
        return {typeset: document.querySelectorAll('mjx-container').length, raw: raw,
                errors: errors.map(m => m.replace(/\s+/g, ' ').slice(0, 160))};
    }""")
    problems = [f"equation left as raw TeX: {text!r}" for text in found["raw"]]
    problems += [f"TeX error or undefined macro: {mml!r}" for mml in found["errors"]]
    return problems, found["typeset"]


def check_images(page) -> tuple[list[str], int]:
    """Check that every image in the article has loaded with a non-zero size.

    Args:
        page: A loaded Playwright page.

    Returns:
        The problems found, and the number of images in cell outputs.
    """
    images = page.evaluate("""async () => {
        const imgs = [...document.querySelectorAll('article img')];
        await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
        return imgs.map(i => ({src: i.getAttribute('src'), w: i.naturalWidth, h: i.naturalHeight,
                               output: !!i.closest('.cell_output')}));
    }""")
    problems = [f"image did not load: {i['src']} ({i['w']}x{i['h']})" for i in images if not (i["w"] and i["h"])]
    return problems, sum(i["output"] for i in images)


def check_sidebar_links(page, base: str, docnames: list[str]) -> list[str]:
    """Check that the left sidebar lists every page of the book and that each of its links resolves.

    Args:
        page: A loaded Playwright page.
        base: The local server's base URL.
        docnames: Every docname of ``_toc.yml``.

    Returns:
        The problems found.
    """
    hrefs = page.eval_on_selector_all(".bd-sidebar-primary a[href]", "links => links.map(a => a.href)")
    internal = sorted({h.split("#")[0] for h in hrefs if h.startswith(base)})
    problems = [f"sidebar link {url} gives HTTP {status}"
                for url in internal if (status := http_status(url)) != 200]
    listed = {url[len(base):].removesuffix(".html") for url in internal}
    problems += [f"sidebar does not link to {name}" for name in docnames[1:] if name not in listed]
    return problems


def check_tracebacks(page) -> list[str]:
    """Check that only cells tagged ``raises-exception`` show a traceback.

    Args:
        page: A loaded Playwright page.

    Returns:
        The problems found.
    """
    cells = page.evaluate("""(marker) => [...document.querySelectorAll('div.cell')].map((cell, i) => ({
        index: i, tagged: cell.classList.contains('tag_raises-exception'),
        traceback: !!cell.querySelector('.cell_output .traceback')
                   || [...cell.querySelectorAll('.cell_output')].some(o => o.textContent.includes(marker)),
        source: (cell.querySelector('.cell_input pre') || cell).textContent.trim().slice(0, 60)}))""", TRACEBACK)
    return [f"code cell {c['index']} ({c['source']!r}) shows a traceback but is not tagged raises-exception"
            for c in cells if c["traceback"] and not c["tagged"]]


def check_widgets(page) -> tuple[list[str], int]:
    """Check that, when the page saved widget state, every widget view renders.

    Args:
        page: A loaded Playwright page.

    Returns:
        The problems found, and the number of views rendered.
    """
    if page.locator(f'script[type="{WIDGET_STATE}"]').count() == 0:
        return [], 0
    views = page.locator(f'script[type="{WIDGET_VIEW}"]').count()
    script = f"""() => [...document.querySelectorAll('script[type="{WIDGET_VIEW}"]')].every(s =>
        s.previousElementSibling && s.previousElementSibling.matches('.widget-subarea')
        && s.previousElementSibling.querySelector('.jupyter-widgets'))"""
    try:
        page.wait_for_function(script, timeout=WAIT_MS)
    except PlaywrightError:
        rendered = page.locator(".widget-subarea .jupyter-widgets").count()
        return [f"widget state saved but only {rendered} of {views} widget views rendered"], rendered
    broken = page.locator(".jupyter-widgets-error-widget").count()
    broken += page.get_by_text("Error displaying widget").count()
    problems = [f"{broken} widget(s) rendered as an error"] if broken else []
    return problems, views


def test_top_index_leads_to_the_root_page(site, browser):
    """``_build/html/index.html``, the address a reader opens first, redirects to the root page."""
    page = browser.new_page()
    try:
        page.goto(site, wait_until="load")
        page.wait_for_url(f"{site}{PAGES[0]}.html", timeout=WAIT_MS)
    except PlaywrightError:
        pytest.fail(f"index.html did not lead to {PAGES[0]}.html (stayed at {page.url})")
    finally:
        page.close()


@pytest.mark.parametrize("docname", PAGES)
def test_page_reads_offline(site, browser, docname):
    """Open one page of the book with the network blocked and check everything it shows."""
    visit = PageVisit(browser, site)
    page = visit.page
    try:
        response = page.goto(f"{site}{docname}.html", wait_until="load", timeout=60_000)
        assert response is not None and response.status == 200, \
            f"{docname}: HTTP {response and response.status} from the local server"
        math_problems, n_equations = check_math(page)
        image_problems, n_images = check_images(page)
        widget_problems, n_widgets = check_widgets(page)
        page.wait_for_load_state("networkidle", timeout=WAIT_MS)
        problems = (
            [f"request outside localhost (blocked): {url}" for url in visit.outside]
            + [f"local request failed: {f}" for f in visit.failed]
            + [f"JavaScript error: {e}" for e in visit.js_errors]
            + math_problems + image_problems + widget_problems
            + check_sidebar_links(page, site, PAGES)
            + check_tracebacks(page)
        )
        if docname in SCREENSHOT_PAGES:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{docname.replace('/', '_')}.png"), full_page=True)
        print(f"{docname}: {n_equations} equations, {n_images} output images, {n_widgets} widgets")
    finally:
        page.close()
    assert not problems, f"{docname}.html:\n  " + "\n  ".join(problems)
