"""The dashboard in a real headless Chromium (Debian's, driven by
Playwright): sign in through the login form, wait for the page's first
refresh, print what its tables show as JSON, keep a screenshot.

usage: dashboard.py BASE_URL APP_ID SECRET SCREENSHOT
env: AKM_TEST_CHROMIUM = the browser binary (Playwright's own download is
not used).
"""
import json
import os
import sys

from playwright.sync_api import sync_playwright


def table(page, selector):
    return page.eval_on_selector_all(
        f"{selector} tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent.trim()))",
    )


def main():
    base, app_id, secret, shot = sys.argv[1:5]
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=os.environ["AKM_TEST_CHROMIUM"],
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1100}, locale="zh-CN")
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url}"))
        page.goto(f"{base}/dashboard")
        page.fill("#appId", app_id)
        page.fill("#secret", secret)
        page.click("button[type=submit]")
        page.wait_for_selector("body[data-loaded=true]", timeout=15000)
        # the charts drew (Chart.js loaded from the binary)
        charts = page.evaluate("typeof Chart !== 'undefined' && Object.keys(Chart.instances).length")
        page.screenshot(path=shot, full_page=True)
        out = {
            "title": page.title(),
            "charts": charts,
            "cities": table(page, "#cities"),
            "codes": table(page, "#codes"),
            "latency": table(page, "#latency"),
            "ready": table(page, "#ready"),
            "tasks": table(page, "#tasks"),
            "dlq": table(page, "#dlq"),
            "errors": errors,
        }
        browser.close()
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
