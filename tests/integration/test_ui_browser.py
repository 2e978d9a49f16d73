"""``livectx ui`` in a real headless Chromium (Selenium) on the running stack: a feature worker with
``/metrics`` processes payments and one poison record while the dashboard is open. The page must chart the
worker's freshness (points drawn, not just an element), list the poison record among the dead letters, and
its entity inspector must show the values ``livectx features get`` prints. Screenshots go to
``test-results/screenshots/`` (CI keeps that folder)."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from livectx.cli import cli
from livectx.settings import Settings

from .engine_helpers import payment, produce, start_metrics_worker
from .kafka_helpers import create_topic

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-results" / "screenshots"
SERVICE = "fraud_features"
VIEW = "user_txn_5m"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser() -> Iterator[object]:
    if shutil.which("chromedriver") is None or shutil.which("chromium") is None:
        pytest.fail("chromium and chromium-driver are not installed: run scripts/bootstrap.sh")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="livectx-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")  # type: ignore[assignment]
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={profile}", "--window-size=1400,2400",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def dashboard(settings: Settings, dlq: str) -> Iterator[str]:
    """The dashboard app under uvicorn in a thread, on a free port, refreshing every 0.5 s."""
    import time

    import uvicorn

    from livectx.ui.app import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(settings, interval_s=0.5, dead_letter_topic=dlq), "127.0.0.1", port,
                            log_level="warning")  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)  # polling a condition with a deadline
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(30)


@pytest.fixture
def dlq(settings: Settings, unique: str) -> str:
    return create_topic(settings, f"test.{unique}.dlq")


def test_the_dashboard_shows_freshness_dead_letters_and_an_entity(  # type: ignore[no-untyped-def]
    settings: Settings, feature_store, unique: str, dlq: str, dashboard: str, browser
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    topic = create_topic(settings, f"test.{unique}.txn", partitions=2)
    user = f"{unique}-u"
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=3)
    # All 20 payments inside one 5-minute tumbling window, or `txn_count_5m` (the newest window's count)
    # never reaches 20: a boundary fell inside the 19 s in about one run in sixteen.
    window = 300 * (int(base.timestamp()) // 300)
    if base.timestamp() + 19 >= window + 300:
        base = datetime.fromtimestamp(window + 300 - 20, UTC)
    good = [payment(user, base + timedelta(seconds=k), k, amount=5.0 + k) for k in range(20)]
    poison = f'{{"poison": "{unique}"'.encode()  # not JSON: dead-lettered as malformed
    produce(settings, topic, [*good[:10], poison, *good[10:]], key=user.encode())
    stop = threading.Event()
    worker = start_metrics_worker(settings, topic, dlq, f"ui-{unique}", unique, _free_port(), stop)
    try:
        browser.get(dashboard)
        # The page redraws every refresh, so an element found may be replaced before it is read: each wait
        # reads what it needs inside its condition and a stale element just means "look again".
        wait = WebDriverWait(browser, 120, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException])

        def charted(driver):  # type: ignore[no-untyped-def]
            assert worker.is_alive(), "the feature worker died"
            boxes = driver.find_elements(By.CSS_SELECTOR, f'#freshness-charts [data-view="{VIEW}"] svg.chart')
            if not boxes:
                return False
            lines = {p.get_attribute("data-series"): p.get_attribute("points") for p in
                     boxes[0].find_elements(By.TAG_NAME, "polyline")}  # fmt: skip
            drawn = int(boxes[0].get_attribute("data-points")) > 0 and all(lines.get(s) for s in ("p50", "p99"))
            return lines["p50"] if drawn else False

        p50 = wait.until(charted)
        coordinates = [tuple(map(float, xy.split(","))) for xy in p50.split()]
        assert coordinates and all(0 <= x <= 360 and 0 <= y <= 140 for x, y in coordinates)

        def dead_lettered(driver):  # type: ignore[no-untyped-def]
            rows = driver.find_elements(By.CSS_SELECTOR, "#dlq-samples tr.dlq-sample")
            return [(r.text, r.get_attribute("data-source")) for r in rows if unique in r.text]

        [(row, source)] = wait.until(dead_lettered)
        assert "not JSON" in row and source.startswith(f"{topic}[")
        assert wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#dlq-reasons [data-reason="malformed"]'))
        group_row = wait.until(lambda d: [r.text for r in d.find_elements(By.CSS_SELECTOR, "#groups tr")
                                          if r.text.startswith(f"ui-{unique}")])[0]  # fmt: skip
        assert f"{topic}[0]" in group_row  # the worker's group, with its lag per partition
        browser.save_screenshot(str(SCREENSHOTS / "dashboard.png"))
        status = browser.find_element(By.ID, "status")
        seen = status.get_attribute("data-updated-ms")
        wait.until(lambda _d: status.get_attribute("data-updated-ms") != seen)  # it keeps updating by itself

        # The entity inspector against `livectx features get`, once the worker applied every payment.
        expected = _features_get_once_applied(user, len(good))
        browser.find_element(By.ID, "entity-id").send_keys(user)
        browser.find_element(By.CSS_SELECTOR, "#entity-form button").click()
        table = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'#entity-features[data-entity="{user}"]'))[0]
        shown = {r.get_attribute("data-feature"): json.loads(r.get_attribute("data-value"))
                 for r in table.find_elements(By.CSS_SELECTOR, "tr[data-feature]")}  # fmt: skip
        browser.find_element(By.ID, "inspector").screenshot(str(SCREENSHOTS / "entity-inspector.png"))
    finally:
        stop.set()
        worker.join(60)
    assert shown["txn_count_5m"] == len(good)
    assert shown == {name: values[0] for name, values in expected.items() if name in shown}
    assert set(shown) == {n for n in expected if n != "user_id" and "__" not in n}
    ages = browser.find_elements(By.CSS_SELECTOR, f'#entity-ages tr[data-view="{VIEW}"]')
    assert ages and "s" in ages[0].text


def _features_get_once_applied(user: str, count: int) -> dict[str, list[object]]:
    """``livectx features get USER --json``, polled until the worker's rows hold every payment."""
    import time

    deadline = time.monotonic() + 120
    while True:
        result = CliRunner().invoke(cli, ["features", "get", user, "--service", SERVICE, "--json"])
        assert result.exit_code == 0, result.output
        values = json.loads(result.output)
        if values["txn_count_5m"][0] == count:
            return values
        assert time.monotonic() < deadline, values
        time.sleep(0.2)  # polling the online store, with a deadline
