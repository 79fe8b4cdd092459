"""A headless Chromium driven with Selenium, one command per line.

The end-to-end tests (tests/src/browser.rs) start this script and talk to it
over stdin/stdout: each line in is a JSON command, each line out the JSON
answer, `{"ok": true, "value": ...}` or `{"ok": false, "error": "..."}`.
Logs go to stderr. It exits when stdin closes, quitting the browser.

Commands (`css` is a CSS selector):
  {"cmd": "open", "url": U}
  {"cmd": "wait_text", "css": C, "contains": T, "timeout_ms": N}
      the element's text once it contains T (fails after N ms)
  {"cmd": "texts", "css": C}          the texts of every matching element
  {"cmd": "visible", "css": C}        whether the first match is displayed
  {"cmd": "fill", "css": C, "text": T}  clears the field, then types T
  {"cmd": "select", "css": C, "value": V}
  {"cmd": "click", "css": C}
  {"cmd": "screenshot", "path": P, "css": C}  the whole page (or element C) as PNG

The browser is Debian's chromium with its chromedriver (override with
$CHROMIUM and $CHROMEDRIVER), with a new empty profile; nothing is fetched
from the network.
"""

import base64
import json
import os
import shutil
import sys
import tempfile
import traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

# Flags for a headless browser that talks to nothing but the page under
# test: no sandbox (tests run as root), no GPU, no background updates,
# sync or first-run pages.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
]
# How often waits look at the page again: small against the page's own
# one-second refresh.
POLL_SECONDS = 0.05
# The page redraws its tables every second: an element found just before a
# redraw is gone when its text is read. Reading again finds the new one;
# this bounds the retries of one read.
STALE_RETRIES = 20


def start(profile):
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in FLAGS + ["--user-data-dir=" + profile]:
        options.add_argument(flag)
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


def read_texts(driver, css):
    """The texts of the elements matching `css`, read again when the page
    replaced an element between finding and reading it."""
    for _ in range(STALE_RETRIES):
        try:
            return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]
        except StaleElementReferenceException:
            continue
    raise RuntimeError(f"{css!r}: the elements kept being replaced while read")


def run(driver, c):
    cmd = c["cmd"]
    if cmd == "open":
        driver.get(c["url"])
        return None
    if cmd == "wait_text":
        found = {}

        def has_text(d):
            texts = read_texts(d, c["css"])
            found["text"] = texts[0] if texts else None
            return found["text"] is not None and c["contains"] in found["text"]

        try:
            WebDriverWait(driver, c.get("timeout_ms", 10000) / 1000, poll_frequency=POLL_SECONDS).until(has_text)
        except Exception:
            raise RuntimeError(
                f"{c['css']!r} never contained {c['contains']!r}; last text: {found.get('text')!r}"
            ) from None
        return found["text"]
    if cmd == "texts":
        return read_texts(driver, c["css"])
    if cmd == "visible":
        els = driver.find_elements(By.CSS_SELECTOR, c["css"])
        return bool(els) and els[0].is_displayed()
    if cmd == "fill":
        e = driver.find_element(By.CSS_SELECTOR, c["css"])
        e.clear()
        e.send_keys(c["text"])
        return None
    if cmd == "select":
        Select(driver.find_element(By.CSS_SELECTOR, c["css"])).select_by_value(c["value"])
        return None
    if cmd == "click":
        driver.find_element(By.CSS_SELECTOR, c["css"]).click()
        return None
    if cmd == "screenshot":
        os.makedirs(os.path.dirname(os.path.abspath(c["path"])), exist_ok=True)
        if c.get("css"):
            ok = driver.find_element(By.CSS_SELECTOR, c["css"]).screenshot(c["path"])
        else:
            # The whole page, beyond the window (which headless Chromium
            # keeps within its screen size), through the DevTools protocol.
            size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            shot = driver.execute_cdp_cmd(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
            )
            with open(c["path"], "wb") as f:
                ok = f.write(base64.b64decode(shot["data"])) > 0
        if not ok:
            raise RuntimeError("screenshot failed")
        return c["path"]
    raise ValueError(f"unknown command {cmd!r}")


def main():
    profile = tempfile.mkdtemp(prefix="emitgate-chromium-")
    driver = None
    try:
        driver = start(profile)
        print(json.dumps({"ok": True, "value": "ready"}), flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                answer = {"ok": True, "value": run(driver, json.loads(line))}
            except Exception as e:  # the answer carries it; the test fails with it
                traceback.print_exc(file=sys.stderr)
                answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            print(json.dumps(answer), flush=True)
    except Exception as e:
        print(json.dumps({"ok": False, "error": f"cannot start the browser: {type(e).__name__}: {e}"}), flush=True)
        raise
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
