"""Make the README's docs/serve-page.png (and a phone-sized one beside it).

    lrcn demo captioning --out runs/demo-captioning
    .venv/bin/python docs/make_serve_screenshot.py runs/demo-captioning/runs/show_attend_tell \\
        runs/demo-captioning/data/flickr/Flicker8k_Dataset/1000_00.jpg yellow docs/serve-page.png

Arguments: the run, a photo, the caption word whose attention is shown, the PNG to write
(the desktop view; the phone view goes to <name>-phone.png).
"""
import sys, pathlib
from playwright.sync_api import sync_playwright, expect
from lrcn.serve.app import ServeSettings, create_app, load_models
from lrcn.serve.loadgen import background_server
run, image, word, out = map(pathlib.Path, sys.argv[1:5])
models = load_models([run])
app = create_app(models, ServeSettings(timeout_s=60))
with background_server(app) as url, sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
    for name, viewport in [("desktop", {"width": 1280, "height": 860}), ("phone", {"width": 390, "height": 844})]:
        page = browser.new_context(viewport=viewport, device_scale_factor=1).new_page()
        page.set_default_timeout(60000)
        page.goto(url)
        page.set_input_files("#file", str(image))
        page.check("#opt-attention")
        page.click("#predict")
        expect(page.locator("#results .caption")).to_be_visible()
        print(name, page.locator("#results .caption").text_content())
        words = page.locator(".attention .word")
        for i in range(words.count()):
            if words.nth(i).text_content().strip() == str(word):
                words.nth(i).click(); break
        target = out if name == "desktop" else out.with_name(f"{out.stem}-phone.png")
        page.screenshot(path=str(target), full_page=(name == "desktop"))
    browser.close()
