"""The dashboard in a real browser: Debian's headless chromium, driven through its
chromedriver by Selenium (tools/install-chromium.sh installs both; nothing is downloaded).

The screenshot lands in test-artifacts/dashboard.png (git-ignored) for a person to look at.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from rules_store.domain.acceptance import ArmKey, Tally
from rules_store.store.acceptance_store import AcceptanceStore
from rules_store.store.redis_store import BundleStore, open_redis
from tests.integration.web_engine import TOKEN, Engine, running_engine
from xsell.embedded import EmbeddedStack

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SEEN_WITHIN_S = 15.0


def _browser() -> WebDriver:
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium, "no chromium on PATH: run tools/install-chromium.sh (make test does)"
    assert driver, "no chromedriver on PATH: run tools/install-chromium.sh (make test does)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1200",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@pytest.fixture(scope="module")
def engine(stack: EmbeddedStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with running_engine(stack, tmp_path_factory.mktemp("dash"), workers=1) as running:
        yield running


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    driver = _browser()
    try:
        yield driver
    finally:
        driver.quit()


def _credit(customer: str, event_id: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "customer_id": customer,
        "ts": "2026-11-23T10:00:00+08:00",
        "product": "理财",
        "kind": "credit",
        "amount": 10_000.0,
        "branch_id": "b07",
    }


def _row_of(browser: WebDriver, customer: str) -> str | None:
    for row in browser.find_elements(By.CSS_SELECTOR, "#feed tr.alert"):
        if customer in row.text:
            return str(row.text)
    return None


def _wait_for(browser: WebDriver, what: str, check: object, within_s: float) -> None:
    try:
        WebDriverWait(browser, within_s, poll_frequency=0.2).until(check)  # type: ignore[arg-type]
    except Exception as exc:
        logs = browser.get_log("browser") if hasattr(browser, "get_log") else []
        msg = f"{what} not seen within {within_s}s; browser console: {json.dumps(logs)[:2000]}"
        raise AssertionError(msg) from exc


def test_dashboard_shows_an_alert_within_seconds_and_reconnects_after_a_worker_restart(
    engine: Engine, browser: WebDriver
) -> None:
    worker = engine.workers[0]
    browser.get(f"{worker.url}/#token={TOKEN}")  # the token travels in the fragment only
    _wait_for(browser, "live status", lambda b: b.find_element(By.ID, "conn").text == "live", 20)
    _wait_for(
        browser,
        "bundle version",
        lambda b: b.find_element(By.ID, "bundle-version").text == engine.version,
        20,
    )
    assert browser.find_elements(By.CSS_SELECTOR, "#rules tr"), "the rules explorer is empty"
    assert "token" not in browser.current_url  # dropped from the address bar once stored

    first = engine.rows[0]["客户编号"]
    engine.send_transactions([_credit(first, "dash-1")])
    sent = time.monotonic()
    _wait_for(browser, f"alert for {first}", lambda b: _row_of(b, first), SEEN_WITHIN_S)
    print(f"alert visible {time.monotonic() - sent:.1f}s after its event was sent")
    row = _row_of(browser, first)
    assert row is not None
    assert "cross-sell" in row
    assert "b07" in row
    assert "lift" in row or "most held" in row  # the rule evidence (or the fallback)
    assert browser.find_element(By.ID, "count-cross_sell").text == "1"
    _wait_for(
        browser,
        "worker figures",
        lambda b: b.find_element(By.ID, "m-events").text not in ("—", "0"),
        15,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    browser.save_screenshot(str(shot))
    print(f"dashboard screenshot: {shot}")

    # The worker restarts; the page reconnects by itself and shows the next alert.
    worker.stop()
    _wait_for(
        browser, "lost connection", lambda b: b.find_element(By.ID, "conn").text != "live", 30
    )
    worker.start()
    _wait_for(browser, "reconnected", lambda b: b.find_element(By.ID, "conn").text == "live", 90)
    second = engine.rows[1]["客户编号"]
    engine.send_transactions([_credit(second, "dash-2")])
    _wait_for(browser, f"alert for {second} after the restart", lambda b: _row_of(b, second), 60)
    assert browser.find_element(By.ID, "count-cross_sell").text == "2"  # no duplicate of the first
    browser.save_screenshot(str(ARTIFACTS / "dashboard-after-restart.png"))


def test_dashboard_shows_acceptance_per_product_and_arm(engine: Engine, browser: WebDriver) -> None:
    store = BundleStore(
        open_redis(engine.settings, engine.stack.endpoints), engine.settings.redis_key_prefix
    )
    challenger = store.publish(replace(engine.bundle, created_at="challenger"))
    store.challenge(challenger, 0.2)
    counts = AcceptanceStore(store.client, engine.settings.redis_key_prefix)
    counts.write(0, {ArmKey(engine.version, 0, "国债"): Tally(30, 50, 20, sent=110)})
    counts.write(1, {ArmKey(engine.version, 1, "理财"): Tally(12, 60, 28, sent=100)})
    counts.write(2, {ArmKey(challenger, 0, "国债"): Tally(18, 12, 10, sent=45)})
    try:
        browser.get(f"{engine.workers[0].url}/#token={TOKEN}")
        _wait_for(
            browser,
            "acceptance rows",
            lambda b: len(b.find_elements(By.CSS_SELECTOR, "#acceptance tr[data-arm]")) == 5,
            30,
        )
        rows = {
            (r.get_attribute("data-product"), r.get_attribute("data-arm")): r.text
            for r in browser.find_elements(By.CSS_SELECTOR, "#acceptance tr[data-arm]")
        }
        assert "210" in rows["all", "champion"]
        assert "21.0% (15.9%–27.2%)" in rows["all", "champion"]
        assert "45.0% (30.7%–60.2%)" in rows["国债", "challenger"]
        assert "30.0% (21.9%–39.6%)" in rows["国债", "champion"]
        summary = browser.find_element(By.ID, "arms-summary").text
        assert f"challenger {challenger} (20%)" in summary
        assert "uplift +114.3%" in summary
        ARTIFACTS.mkdir(exist_ok=True)
        panel = browser.find_element(By.CSS_SELECTOR, "table.acceptance")
        browser.execute_script("arguments[0].scrollIntoView()", panel.find_element(By.XPATH, ".."))
        browser.save_screenshot(str(ARTIFACTS / "dashboard-acceptance.png"))
    finally:
        store.end_challenge()
        store.client.close()
