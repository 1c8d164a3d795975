"""The HTML page as a person meets it: a real run, rendered, opened in headless Chromium.

Needs Debian's chromium (``apt-get install -y chromium``) and the ``playwright`` Python package
(``pip install -e '.[dev]'``); a missing one fails the test with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.engines

CHROMIUM = os.environ.get("RESPMATRIX_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def respmatrix(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "respmatrix", *args], capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run (two engines, the strings family, the raw client), rendered."""
    out = tmp_path_factory.mktemp("page")
    run = respmatrix(
        "run",
        "--engines",
        "redis-7.2,valkey-9.1",
        "--families",
        "strings",
        "--clients",
        "raw",
        "-n",
        "0",
        "--out",
        str(out),
    )
    assert (out / "results.json").exists(), run.stdout[-3000:] + run.stderr[-3000:]
    render = respmatrix("report", "render", str(out / "results.json"))
    assert render.returncode == 0, render.stderr
    assert (out / "matrix.md").exists()
    return out / "index.html"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: run `pip install -e '.[dev]'`")
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"chromium not found at {CHROMIUM}: run `apt-get install -y chromium` "
            "(or set RESPMATRIX_CHROMIUM to a Chromium binary)"
        )
    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield instance
        finally:
            instance.close()


def test_filter_and_open_a_cell(page_file: Path, browser, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(page_file.as_uri())

    # What was run, on what: exact versions, build ids, client versions, the date.
    expect(
        page.get_by_role("heading", name="Redis and Valkey compatibility matrix")
    ).to_be_visible()
    facts = page.locator("#run")
    expect(facts).to_contain_text("Valkey 9.1.2")
    expect(facts).to_contain_text("Redis 7.2.4")
    expect(facts).to_contain_text("respmatrix")
    expect(page.locator("header time")).to_contain_text("UTC")

    rows = page.locator("#matrix-table tr.r")
    ifeq = rows.filter(has=page.get_by_role("rowheader", name="set-ifeq", exact=True))
    redis_cell, valkey_cell = ifeq.locator("td.c").nth(0), ifeq.locator("td.c").nth(1)
    expect(redis_cell).to_contain_text("— no")
    expect(valkey_cell).to_contain_text("✓ yes")
    both_protocols = int(valkey_cell.locator(".n").inner_text())

    # Filter: only what an engine refuses.
    page.select_option("#f-outcome", "unsupported")
    expect(ifeq).to_be_visible()
    get_row = rows.filter(has=page.get_by_role("rowheader", name="get", exact=True))
    expect(get_row).to_be_hidden()
    # Filter: one protocol; the cell now counts half the results.
    page.get_by_label("RESP3").uncheck()
    expect(valkey_cell.locator(".n")).to_have_text(str(both_protocols // 2))
    expect(page.locator("#shown")).to_contain_text("raw/resp2")
    # Filter: hide the Redis line; its columns go.
    page.locator("label.line", has_text="Redis").locator("input").uncheck()
    expect(redis_cell).to_be_hidden()
    expect(page.locator("#shown")).to_contain_text("1 of 2 engines")
    page.locator("label.line", has_text="Redis").locator("input").check()

    # A cell's detail: the case, the commands sent, the reply seen, the registry's explanation.
    page.locator("#f-q").fill("ifeq-replaces-on-match")
    redis_cell.click()
    dialog = page.locator("dialog#detail")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("set-ifeq on redis-7.2")
    expect(dialog).to_contain_text("Redis 7.2.4")
    expect(dialog).to_contain_text("absent: the engine refuses it, as the registry says")
    expect(dialog).to_contain_text("SET IFEQ replaces the value when the current value matches")
    expect(dialog).to_contain_text("SET k v2 IFEQ v1")
    expect(dialog).to_contain_text("(error) ERR syntax error")
    expect(dialog).to_contain_text("Valkey 8.1 addition")
    expect(dialog.get_by_role("link", name="source").first).to_have_attribute(
        "href", "https://valkey.io/commands/set/"
    )
    expect(dialog).to_contain_text("Availability on Redis: No")
    shot = tmp_path / "report-detail.png"
    page.screenshot(path=str(shot), full_page=False)
    print(f"screenshot: {shot}")
    page.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    # The availability section.
    availability = page.locator("#availability tr", has=page.locator("code", has_text="set-ifeq"))
    expect(availability.first).to_contain_text("No")
    assert errors == []


def test_cells_read_the_same_without_javascript(page_file: Path, browser) -> None:
    """The server-rendered cells and the script's cells follow the same rules."""
    with_js = browser.new_page()
    with_js.goto(page_file.as_uri())
    context = browser.new_context(java_script_enabled=False)
    without = context.new_page()
    without.goto(page_file.as_uri())
    cells = "#matrix-table td.c"
    assert with_js.locator(cells).all_inner_texts() == without.locator(cells).all_inner_texts()
    context.close()


def test_readable_on_a_phone(page_file: Path, browser, tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    page.goto(page_file.as_uri())
    # The page itself does not scroll sideways; the matrix scrolls inside its frame.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.locator("#matrix-table td.c").first.click()
    box = page.locator("dialog#detail").bounding_box()
    assert box is not None and box["width"] <= 390
    shot = tmp_path / "report-phone.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
