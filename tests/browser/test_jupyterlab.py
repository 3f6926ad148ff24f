"""End to end in a real JupyterLab, in headless Chromium: run tutorial notebooks as a reader would.

- Notebook 05: move the AttentionViewer's frame slider and see the rendered picture change.
- Notebook 02: click a pixel of a source's frame in the SeparationViewer and get that pixel's
  sound (the click travels through ipyevents to the kernel and back).

Screenshots land in ``reports/browser/``: the page after each run, the viewers before and
after. The fixtures (server, browser) are in this folder's conftest.py.
"""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from PIL import Image

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
LOAD_MS = 60_000  # JupyterLab's page and the kernel's start
RUN_MS = 240_000  # the whole notebook: about 25 s on two CPU cores
WIDGET_MS = 30_000  # a slider's move reaching the kernel and the new picture coming back

# The kernel is idle and every code cell has run (none queued or running), or a cell raised:
# Run All stops at an error, and the traceback is then reported at once.
RUN_ENDED = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
    const outputs = [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')];
    const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
    const ran = prompts.length > 0
        && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
    const raised = outputs.some(o => o.textContent.includes('Traceback'));
    return (ran || raised) && status !== null && status.dataset.status === 'idle';
}"""
# SHA-256 of what a blob: or data: URL holds, so "the picture changed" means its bytes did.
DIGEST = """async src => {
    const bytes = await (await fetch(src)).arrayBuffer();
    const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return Array.from(hash, b => b.toString(16).padStart(2, '0')).join('');
}"""


@contextmanager
def explained(page: Page, server, console: list[str], reports: Path, what: str) -> Iterator[None]:
    """Turn a Playwright timeout into a failure that says what was awaited, with the server's
    log tail and the browser's console errors; the page at that moment is saved."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        yield
        return
    except PlaywrightTimeout as error:
        reason = error.message.splitlines()[0]
    shot = reports / "failure.png"
    page.screenshot(path=shot)
    console_tail = "\n".join(console[-20:]) or "(none)"
    pytest.fail(f"timed out waiting for {what}: {reason}\npage at that moment: {shot}\n"
                f"browser console errors:\n{console_tail}\n{server.log_tail()}", pytrace=False)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def run_notebook(browser: BrowserContext, jupyter_server, reports: Path, name: str) -> tuple[Page, list[str]]:
    """Open notebook `name` in JupyterLab, Run All Cells, and check it raised nothing and its
    widgets rendered; returns the page and the browser's console errors."""
    (reports / "failure.png").unlink(missing_ok=True)
    shutil.copy(NOTEBOOKS / name, jupyter_server.root / name)  # it writes scratch/ in the tmp root
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: console.append(f"page error: {error}"))

    with explained(page, jupyter_server, console, reports, "the notebook and an idle kernel"):
        page.goto(jupyter_server.lab_url(name), timeout=LOAD_MS)
        page.locator(".jp-Notebook .jp-CodeCell").first.wait_for(timeout=LOAD_MS)
        # The status bar names the kernel and its state once the kernel is connected.
        kernel = page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"^Python 3.*\| Idle$"))
        kernel.wait_for(timeout=LOAD_MS)

    # Run > Run All Cells, as a reader would.
    with explained(page, jupyter_server, console, reports, "the Run menu"):
        menu = page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$"))
        menu.click(timeout=LOAD_MS)
        item = page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))
        item.click(timeout=LOAD_MS)
    with explained(page, jupyter_server, console, reports, "every cell to run (Run All Cells)"):
        page.wait_for_function(RUN_ENDED, timeout=RUN_MS, polling=250)

    # Errors are rendered as application/vnd.jupyter.stderr outputs holding the traceback.
    texts = page.locator(".jp-Notebook .jp-OutputArea-output").all_inner_texts()
    tracebacks = [text for text in texts if "Traceback" in text]
    assert not tracebacks, "the notebook raised in JupyterLab:\n" + "\n".join(tracebacks)
    # A widget that did not render shows text instead: the repr, or the manager's messages when
    # the ipywidgets lab extension did not load or the model never arrived.
    fallback = re.compile(r"^(VBox\(|\w+Viewer|Loading widget|Error displaying widget)")
    fallbacks = [text for text in texts if fallback.match(text)]
    assert not fallbacks, f"widgets did not render: {fallbacks}"
    return page, console


@pytest.mark.browser
@pytest.mark.timeout(360)
def test_notebook_05_runs_in_jupyterlab_and_the_attention_viewer_follows_its_slider(
        browser: BrowserContext, jupyter_server, reports: Path) -> None:
    page, console = run_notebook(browser, jupyter_server, reports, "05_attention_and_curriculum.ipynb")

    # The output of the cell that ends in `AttentionViewer(seen)` (other cells show other viewers).
    cell = page.locator(".jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text="AttentionViewer(seen)"))
    viewer = cell.locator(".jp-OutputArea-output > .widget-vbox")
    frame = viewer.locator(".widget-slider").filter(
        has=page.locator("label.widget-label", has_text=re.compile(r"^frame$")))
    with explained(page, jupyter_server, console, reports, "the AttentionViewer to render"):
        viewer.wait_for(timeout=WIDGET_MS)
    cell.evaluate("cell => cell.scrollIntoView({block: 'start'})")
    run_shot = reports / "jupyterlab_notebook_05.png"
    page.screenshot(path=run_shot, full_page=True)
    assert viewer.count() == 1
    picture = viewer.locator("img.widget-image")
    handle = frame.locator(".noUi-handle")
    readout = frame.locator(".widget-readout")
    caption = viewer.locator(":scope > .widget-label")
    assert readout.inner_text() == "0" and handle.get_attribute("aria-valuenow") == "0.0"
    with explained(page, jupyter_server, console, reports, "the viewer's picture to load"):
        page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                               arg=picture.element_handle(), timeout=WIDGET_MS)
    src_before = picture.get_attribute("src")
    assert src_before and src_before.startswith(("blob:", "data:")), src_before
    digest_before = page.evaluate(DIGEST, src_before)
    caption_before = caption.inner_text()
    before = pixels(picture.screenshot())
    assert before.std() > 0, "the viewer's picture is blank"
    before_shot = reports / "attention_viewer_frame_0.png"
    viewer.screenshot(path=before_shot)

    # Move the frame slider one step with the keyboard; the kernel redraws and sends a new PNG.
    handle.focus()
    handle.press("ArrowRight")
    with explained(page, jupyter_server, console, reports, "a new picture after the slider moved"):
        page.wait_for_function(
            "([img, before]) => img.src !== before && img.complete && img.naturalWidth > 0",
            arg=[picture.element_handle(), src_before], timeout=WIDGET_MS)
    assert readout.inner_text() == "1"
    assert handle.get_attribute("aria-valuenow") == "1.0"
    src_after = picture.get_attribute("src")
    assert src_after != src_before
    assert page.evaluate(DIGEST, src_after) != digest_before, "a new URL, but the same PNG bytes"
    assert caption.inner_text() != caption_before, "the caption still names frame 0"
    after = pixels(picture.screenshot())
    assert after.shape == before.shape
    assert not np.array_equal(after, before), "the picture on screen did not change"
    after_shot = reports / "attention_viewer_frame_1.png"
    viewer.screenshot(path=after_shot)

    assert not [line for line in console if "page error" in line], console
    for shot in (run_shot, before_shot, after_shot):
        print(f"screenshot: {shot}")


@pytest.mark.browser
@pytest.mark.timeout(360)
def test_notebook_02_clicking_a_pixel_plays_that_pixels_sound(
        browser: BrowserContext, jupyter_server, reports: Path) -> None:
    page, console = run_notebook(browser, jupyter_server, reports, "02_cosegmentation_and_separation.ipynb")
    cell = page.locator(".jp-CodeCell").filter(
        has=page.locator(".jp-InputArea-editor", has_text="SeparationViewer(example)"))
    viewer = cell.locator(".jp-OutputArea-output > .widget-vbox")
    with explained(page, jupyter_server, console, reports, "the SeparationViewer to render"):
        viewer.wait_for(timeout=WIDGET_MS)
    cell.evaluate("cell => cell.scrollIntoView({block: 'start'})")
    # The pixel section: one clickable picture per source's frame, a caption and a player.
    caption = viewer.locator(".widget-label", has_text=re.compile(r"'s frame, pixel \(\d+, \d+\): keeps"))
    frames = viewer.locator(".widget-vbox .widget-vbox", has=page.locator(".widget-label", has_text="'s frame"))
    picture = frames.first.locator("img.widget-image")
    player = caption.locator("xpath=..").locator("audio")
    with explained(page, jupyter_server, console, reports, "the first source frame's picture to load"):
        page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                               arg=picture.element_handle(), timeout=WIDGET_MS)
    assert frames.count() >= 2
    before_text = caption.inner_text()
    before_audio = player.get_attribute("src")
    before_pixels = pixels(picture.screenshot())
    page.screenshot(path=reports / "jupyterlab_notebook_02.png", full_page=True)
    viewer.screenshot(path=reports / "separation_viewer_before_click.png")

    # Click the cell diagonally opposite the selected one, on the first source's frame.
    row, column = (int(x) for x in re.search(r"pixel \((\d+), (\d+)\)", before_text).groups())
    box = picture.bounding_box()
    assert box is not None and box["width"] > 100, "the frame picture is not enlarged"
    target_row, target_column = (0 if row else 1), (0 if column else 1)  # C5 is 2 x 2 at 64 px
    picture.click(position={"x": box["width"] * (0.25 + 0.5 * target_column),
                            "y": box["height"] * (0.25 + 0.5 * target_row)})
    expected = re.compile(rf"pixel \({target_row}, {target_column}\): keeps")
    with explained(page, jupyter_server, console, reports, "the clicked pixel's caption"):
        page.wait_for_function("([label, pattern]) => new RegExp(pattern).test(label.textContent)",
                               arg=[caption.element_handle(), expected.pattern], timeout=WIDGET_MS)
    with explained(page, jupyter_server, console, reports, "the clicked pixel's sound"):
        page.wait_for_function("([audio, before]) => audio.src && audio.src !== before",
                               arg=[player.element_handle(), before_audio or ""], timeout=WIDGET_MS)
    assert caption.inner_text().startswith(before_text.split(",")[0])  # the first source's frame
    after_pixels = pixels(picture.screenshot())
    assert not np.array_equal(after_pixels, before_pixels), "the outline did not move"
    viewer.screenshot(path=reports / "separation_viewer_after_click.png")
    assert not [line for line in console if "page error" in line], console
