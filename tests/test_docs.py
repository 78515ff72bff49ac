"""The documentation: the site builds strictly, covers every public name, and every page is reachable.

The site is built once per run with the command of ``make docs`` (``mkdocs
build --strict``, a few seconds), and any ``WARNING`` line of its output fails
the suite too: a broken link, a page missing from the nav, a docstring griffe
cannot parse, a formula that does not typeset or a reference to a vanished
name. ``--quiet`` is never passed: in mkdocs 1.6 it drops warnings before
strict mode counts them (a broken link then builds "cleanly"), which
``test_a_broken_link_fails_the_build`` checks on a copy of the docs.
The built pages are self-contained: maths is MathML made at build time and no
page loads a script, style sheet, font or image from another host.
"""

import contextlib
import fnmatch
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

import griffe
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"

# Modules whose names are not library API: the CLI is documented by its own page
# (docs/cli.md, generated from the parser), the experiments by the Figure 2, Figure 6
# and GRPO pages.
NOT_API = ("costsgd.cli", "costsgd.experiments")


def _config() -> dict:
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def _build(root: Path, out: Path) -> tuple[int, str]:
    """``mkdocs build --strict`` of ``root``'s mkdocs.yml into ``out``: exit status and output."""
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def _warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    status, output = _build(ROOT, out)
    assert status == 0, f"mkdocs build --strict failed:\n{output}"
    assert _warnings(output) == [], output
    return out


def test_make_docs_is_the_strict_build_of_this_test():
    recipe = re.search(r"^docs:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.M)
    assert recipe, "the Makefile has a docs target"
    assert "mkdocs build --strict" in recipe.group(1)
    assert not re.search(r"\s(-q|--quiet)\b", recipe.group(1)), "--quiet hides warnings"


def test_a_broken_link_fails_the_build(tmp_path):
    # A copy of the docs with one broken link: the build must fail and name the link.
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    (tmp_path / "costsgd").symlink_to(ROOT / "costsgd")
    index = tmp_path / "docs" / "index.md"
    index.write_text(index.read_text(encoding="utf-8") + "\n[gone](no-such-page.md)\n")
    status, output = _build(tmp_path, tmp_path / "site")
    assert status != 0
    assert [w for w in _warnings(output) if "no-such-page.md" in w], output


@pytest.fixture(scope="module")
def package() -> griffe.Module:
    # The griffe extensions of the site (mkdocs.yml), so docstrings read as the site reads them.
    (mkdocstrings,) = [p["mkdocstrings"] for p in _config()["plugins"] if "mkdocstrings" in p]
    paths = mkdocstrings["handlers"]["python"]["options"].get("extensions", [])
    extensions = griffe.load_extensions(*(str(ROOT / p) for p in paths))
    return griffe.load(
        "costsgd", search_paths=[str(ROOT)], extensions=extensions, resolve_aliases=True
    )


def _public_modules(module: griffe.Module):
    if module.path.startswith(NOT_API):
        return
    yield module
    for name, sub in module.modules.items():
        if not name.startswith("_") and not sub.is_alias:
            yield from _public_modules(sub)


def _final(obj):
    return obj.final_target if obj.is_alias else obj


def _rendered(site: Path, package: griffe.Module) -> set[str]:
    """Paths of the objects the API reference renders (alias chains followed to the definition)."""
    anchors = set()
    for page in (site / "api").rglob("*.html"):
        anchors |= set(re.findall(r'id="(costsgd(?:\.\w+)+)"', page.read_text(encoding="utf-8")))
    collection = package.modules_collection
    paths = set()
    for anchor in anchors:
        try:
            paths.add(_final(collection[anchor]).path)
        except (KeyError, griffe.AliasResolutionError):
            continue  # a heading's anchor that is not an object (a member of a NamedTuple, ...)
    return paths


def test_every_public_name_is_rendered_with_a_docstring(site, package):
    rendered = _rendered(site, package)
    missing, undocumented = [], []
    for module in _public_modules(package):
        for name in module.exports or ():
            where = f"{module.path}.{name}"
            try:
                target = _final(module[name])
            except (KeyError, griffe.AliasResolutionError):
                missing.append(f"{where} (griffe cannot find its definition)")
                continue
            if target.path not in rendered:
                missing.append(where)
            if not (target.docstring and target.docstring.value.strip()):
                undocumented.append(where)
    assert not missing, f"public names not rendered by docs/api/*.md: {missing}"
    assert not undocumented, f"public names without a docstring: {undocumented}"


def test_public_names_are_objects_not_shadowed_modules(package):
    # `costsgd.X` must be what `costsgd.__all__` promises, not a submodule of the same name.
    shadowed = []
    for module in _public_modules(package):
        for name in module.exports or ():
            try:
                if _final(module[name]).is_module:
                    shadowed.append(f"{module.path}.{name}")
            except (KeyError, griffe.AliasResolutionError):
                continue  # reported by the test above
    assert not shadowed, f"exported names that resolve to a module: {shadowed}"


def _nav_pages(nav) -> list[str]:
    pages = []
    for entry in nav:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def _excluded(relative: str, patterns: str) -> bool:
    return any(
        fnmatch.fnmatch(relative, p.strip().rstrip("/") + "/*") or fnmatch.fnmatch(relative, p)
        for p in patterns.split()
    )


def test_every_docs_page_is_in_the_nav():
    config = _config()
    nav = _nav_pages(config["nav"])
    pages = sorted(
        p.relative_to(DOCS).as_posix()
        for p in DOCS.rglob("*.md")
        if not _excluded(p.relative_to(DOCS).as_posix(), config.get("exclude_docs", ""))
    )
    assert sorted(set(nav)) == sorted(nav), "a page is listed twice in the nav"
    assert [p for p in pages if p not in nav] == [], "pages missing from mkdocs.yml's nav"
    assert [p for p in nav if p not in pages] == [], "nav entries without a page"


def test_readme_is_short_and_names_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) <= 10_000
    assert "make demo" in text and "make test" in text
    start, end = "<!-- claims-table:start -->", "<!-- claims-table:end -->"
    assert text.count(start) == 1 and text.count(end) == 1
    assert text.index(start) < text.index(end)


def test_readme_links_point_at_existing_docs_pages():
    text = README.read_text(encoding="utf-8")
    links = re.findall(r"\]\((docs/[^)#\s]+)", text)
    assert links, "the README links into the docs"
    assert [link for link in links if not (ROOT / link).is_file()] == []


class _Requests(HTMLParser):
    """The URLs an HTML page makes the browser fetch (scripts, styles, fonts, images, frames)."""

    LOADS: ClassVar[dict[str, tuple[str, ...]]] = {
        "script": ("src",),
        "img": ("src", "srcset"),
        "source": ("src", "srcset"),
        "iframe": ("src",),
        "embed": ("src",),
        "object": ("data",),
        "audio": ("src",),
        "video": ("src", "poster"),
        "track": ("src",),
    }
    LINK_RELS: ClassVar[set[str]] = {
        "stylesheet",
        "preload",
        "modulepreload",
        "prefetch",
        "preconnect",
        "icon",
    }

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._style = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in self.LOADS.get(tag, ()):
            if attrs.get(name):
                self.urls += [part.split()[0] for part in attrs[name].split(",") if part.strip()]
        if tag == "link" and self.LINK_RELS & set((attrs.get("rel") or "").split()):
            self.urls.append(attrs.get("href") or "")
        if attrs.get("style"):
            self.urls += _css_urls(attrs["style"])
        self._style = tag == "style"

    def handle_data(self, data):
        if self._style:
            self.urls += _css_urls(data)

    def handle_endtag(self, tag):
        self._style = False


def _css_urls(css: str) -> list[str]:
    urls = re.findall(r"url\(\s*['\"]?([^'\")]+)", css)
    return urls + re.findall(r"@import\s+['\"]([^'\"]+)", css)


def _external(url: str) -> bool:
    return url.startswith("//") or urlsplit(url).scheme in {"http", "https", "ftp"}


def test_no_page_loads_anything_from_another_host(site):
    # Offline (clusters, these machines) a page must render from the site folder alone.
    external = []
    for page in site.rglob("*.html"):
        parser = _Requests()
        parser.feed(page.read_text(encoding="utf-8"))
        external += [f"{page.relative_to(site)}: {u}" for u in parser.urls if _external(u)]
    for sheet in site.rglob("*.css"):
        urls = _css_urls(sheet.read_text(encoding="utf-8"))
        external += [f"{sheet.relative_to(site)}: {u}" for u in urls if _external(u)]
    assert external == []


def test_requests_parser_sees_external_loads():
    parser = _Requests()
    parser.feed(
        '<link rel="preconnect" href="https://fonts.gstatic.com"><script src="//cdn.x/m.js">'
        '</script><style>@import "https://fonts.googleapis.com/css";</style>'
        '<img srcset="a.png 1x, https://x.org/b.png 2x"><a href="https://example.org">ok</a>'
    )
    assert [u for u in parser.urls if _external(u)] == [
        "https://fonts.gstatic.com",
        "//cdn.x/m.js",
        "https://fonts.googleapis.com/css",
        "https://x.org/b.png",
    ]


def test_maths_is_mathml_made_at_build_time(site):
    # Every formula the pages hold was typeset by docs/extensions/mathml.py: none is left as TeX.
    formulas, tex = 0, []
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        for m in re.finditer(r'<(span|div) class="arithmatex">(.*?)</\1>', text, re.S):
            formulas += 1
            if not m.group(2).lstrip().startswith("<math"):
                tex.append(f"{page.relative_to(site)}: {m.group(2)[:80]}")
    assert formulas > 100, "the API reference typesets its formulas"
    assert tex == []


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Headless, with the network off: every other host goes to a closed proxy port and resolves
# to nothing. Chromium's own background requests are told apart by the network log's
# initiator: a page's requests carry the page's origin.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-extensions",
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--window-size=1280,1400",
    "--virtual-time-budget=8000",
]


@contextlib.contextmanager
def _served(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()


def _browse(url: str, out: Path) -> list[str]:
    """Open ``url`` in headless Chromium, screenshot it to ``out``; the page's requests."""
    netlog = out.with_suffix(".netlog.json")
    profile = out.with_suffix(".profile")
    outputs = [f"--user-data-dir={profile}", f"--log-net-log={netlog}", f"--screenshot={out}"]
    subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, *outputs, url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    origin = url.split("/", 3)[:3]
    return [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start and e.get("params", {}).get("initiator") == "/".join(origin)
    ]


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
@pytest.mark.parametrize("page", ["index.html", "api/costsgd/index.html", "grpo/index.html"])
def test_a_browser_offline_loads_each_page_from_the_site_alone(site, page, tmp_path):
    with _served(site) as root:
        requests = _browse(f"{root}/{page}", tmp_path / "page.png")
    assert requests, "the page loaded its own styles and scripts"
    assert [r for r in requests if not r.startswith(f"{root}/")] == []
    assert (tmp_path / "page.png").stat().st_size > 10_000


@pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install chromium)")
def test_the_browser_check_sees_an_external_script(tmp_path):
    (tmp_path / "index.html").write_text(
        '<html><body>x<script src="https://cdn.example.org/m.js"></script></body></html>'
    )
    with _served(tmp_path) as root:
        requests = _browse(f"{root}/index.html", tmp_path / "page.png")
    assert "https://cdn.example.org/m.js" in requests
