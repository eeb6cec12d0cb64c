"""The web page of ``lrcn serve`` in a real browser: Debian's chromium driven by Playwright.

A real server (untrained captioning, activity and VQA bundles) runs on a loopback port; the
test uses the page as a person would (pick a model, upload, tick options, press Predict) and
checks what the DOM shows against what the API answers for the same upload, then looks at the
page on a phone-sized screen. Screenshots go to $LRCN_SCREENSHOTS (else the test's tmp_path);
the README's docs/serve-page.png shows a trained model instead (lrcn demo captioning).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from lrcn.serve.app import ServeSettings, create_app, load_models
from lrcn.serve.loadgen import background_server

pytestmark = pytest.mark.slow

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def _chromium() -> str:
    """Debian's chromium; no browser is ever downloaded (`make test` apt-installs it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    if shutil.which("apt-get") is None:
        pytest.skip("no chromium executable and no apt-get to install Debian's chromium")
    pytest.fail("no chromium executable: run `make browser` (apt-get install chromium)")


@pytest.fixture(scope="module")
def server(untrained_run) -> Iterator[str]:
    """Base URL of a server with captioning (show_attend_tell), activity and VQA models."""
    tasks = ["captioning", "activity", "vqa"]
    loaded = load_models([untrained_run(task) for task in tasks])
    app = create_app(dict(zip(tasks, loaded.values(), strict=True)), ServeSettings(timeout_s=30))
    with background_server(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("LRCN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(browser: Browser, url: str, **context) -> tuple[Page, list[str]]:
    """A fresh page on ``url`` with its models loaded, and the list its script errors go to."""
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    # the browser logs every 4xx answer as a console error; the page's own errors are the rest
    page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.goto(url)
    expect(page.locator("#health")).to_have_text("3 models served")
    expect(page.locator("#model option")).to_have_count(3)
    return page, errors


def _api_caption(url: str, image: Path) -> dict:
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post(
            "/v1/models/captioning/predict",
            files=[("file", (image.name, image.read_bytes()))],
            data={"attention": "true"},
        )
    assert response.status_code == 200, response.text
    return response.json()["results"][0]


def test_page_desktop(browser, server, sample_media, shots):
    page, errors = _open(browser, server, viewport=DESKTOP)
    predict = page.locator("#predict")

    # captioning with attention: the caption is the API's, the words can be stepped through
    page.select_option("#model", "captioning")
    page.set_input_files("#file", sample_media["image"])
    expect(page.locator("#preview img")).to_be_visible()
    page.check("#opt-attention")
    predict.click()
    expect(predict).to_have_attribute("aria-busy", "true")  # predict with a figure takes > 1 s
    caption = page.locator("#results .caption")
    expect(caption).to_be_visible()
    expect(predict).to_have_attribute("aria-busy", "false")
    expected = _api_caption(server, sample_media["image"])
    assert caption.text_content() == expected["caption"] != ""

    words = page.locator(".attention .word")
    expected_words = [w["word"] for w in expected["attention_words"]]
    expect(words).to_have_text(expected_words)
    canvas = page.locator("canvas.attention-canvas")
    expect(canvas).to_be_visible()
    painted = "c => c.getContext('2d').getImageData(c.width / 2, c.height / 2, 1, 1).data[3]"
    page.wait_for_function(f"({painted})(document.querySelector('canvas.attention-canvas')) > 0")
    expect(words.nth(0)).to_have_attribute("aria-pressed", "true")
    page.click(".attention button.next")
    expect(words.nth(1)).to_have_attribute("aria-pressed", "true")
    expect(words.nth(0)).to_have_attribute("aria-pressed", "false")
    expect(page.locator(".attention .current")).to_contain_text(f"word 2 of {len(expected_words)}")
    page.keyboard.press("ArrowRight")  # focus is still on the next button, inside the stepper
    expect(page.locator(".attention .current")).to_contain_text("word 3 of")
    shot = shots / "serve-desktop-caption.png"
    page.screenshot(path=str(shot), full_page=True)

    # the wrong kind of file: the server's 415 detail shows in the error box
    page.set_input_files("#file", sample_media["video"])
    predict.click()
    expect(page.locator("#error")).to_be_visible()
    expect(page.locator("#error")).to_contain_text("415")

    # activity on a video: the untrained bundle's three classes as bars
    page.select_option("#model", "activity")
    expect(page.locator("#error")).to_be_hidden()
    page.set_input_files("#file", sample_media["video"])
    predict.click()
    bars = page.locator("#results .bar-row")
    expect(bars).to_have_count(3)
    labels = page.locator("#results .bar-label").all_text_contents()
    assert sorted(labels) == ["jump", "run", "wave"]
    values = page.locator("#results .bar-value").all_text_contents()
    assert all(v.endswith("%") for v in values)
    assert abs(sum(float(v.rstrip("%")) for v in values) - 100) < 0.5
    page.screenshot(path=str(shots / "serve-desktop-activity.png"), full_page=True)

    # VQA needs its question: the page says so instead of sending the form
    page.select_option("#model", "vqa")
    page.set_input_files("#file", sample_media["image"])
    predict.click()
    expect(page.locator("#form-problem")).to_contain_text("question")
    expect(page.locator("#opt-question")).to_be_focused()
    page.fill("#opt-question", "what colour is the circle")
    page.keyboard.press("Enter")  # submits the form from the text field
    expect(page.locator("#results .bar-row")).to_have_count(4)  # the bundle's four answers
    expect(page.locator("#form-problem")).to_be_hidden()
    assert errors == []


def test_page_phone(browser, server, sample_media, shots):
    page, errors = _open(
        browser, server, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    predict = page.locator("#predict")
    page.select_option("#model", "captioning")
    expect(predict).to_be_in_viewport()
    page.set_input_files("#file", sample_media["image"])
    page.check("#opt-attention")
    predict.click()
    expect(page.locator("#results .caption")).to_be_visible()
    expect(page.locator("canvas.attention-canvas")).to_be_visible()
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"the page is {width} px wide on a {inner} px screen"
    predict.scroll_into_view_if_needed()
    expect(predict).to_be_visible()
    box = predict.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= inner
    page.screenshot(path=str(shots / "serve-phone.png"), full_page=True)
    assert errors == []
