"""The chat UI in a real headless Chromium: type a request, read the recommendations."""
import shutil

import pytest

from tests.conftest import free_port
from ui.chat_app import build_app

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


@pytest.mark.browser
def test_type_a_request_and_see_constrained_cards(recommender_100k, tmp_path):
    if not shutil.which("chromium"):
        pytest.fail("Debian chromium is not installed; .ci/run installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    app = build_app(recommender_100k)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False, ssr_mode=False,
               quiet=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/", wait_until="load")
            page.locator("#message textarea").fill("a western from the 1950s, no comedy")
            page.locator("#message textarea").press("Enter")
            bot = page.locator("#chat .message.bot, #chat [data-testid='bot']").last
            bot.wait_for(timeout=60_000)
            page.wait_for_function("document.querySelector('#chat').innerText.includes('Western')", timeout=60_000)
            text = page.locator("#chat").inner_text()
            page.screenshot(path=str(tmp_path / "chat.png"))
            browser.close()
    finally:
        app.close()
    assert "a western from the 1950s, no comedy" in text
    assert "Constraints: genres: western; not: comedy; years 1950-1959" in text
    listed = [line for line in text.splitlines() if " — " in line]
    assert listed and all("Western" in line and "Comedy" not in line for line in listed)
    assert all(any(f"(195{d})" in line for d in range(10)) for line in listed)
