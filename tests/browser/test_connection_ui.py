"""The connection form and the list view's Test button in Airflow's UI, in headless Chromium.

Run by ``make browser`` (not by ``make test``): it installs Debian's chromium and chromedriver and
the pinned selenium into ``.browser/``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_files.emulator.testing import EmulatorHandle, run_emulator
from airflow_provider_files.get_provider_info import CONN_FIELDS, GATEWAY_NAMES, GATEWAYS

from .support import CHROMEDRIVER, PASSWORD, USERNAME, ApiServer, chromium_options, free_port, run_api_server

# Generous: a loaded 2-core machine draws the React UI slowly; every wait is for a condition.
WAIT_S = 90
KEY = "sk-browser-test-key-31415926"
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".browser"  # a failed wait leaves one there
# Fields Airflow would show as "***" (secret-looking names) have no default; every other one has one.
NO_DEFAULT = {name for name, spec in CONN_FIELDS.items() if "default" not in spec["schema"]}


@pytest.fixture(scope="module")
def ui_emulator() -> Iterator[EmulatorHandle]:
    with run_emulator(api_key=KEY) as handle:
        yield handle


@pytest.fixture(scope="module")
def api_server() -> Iterator[ApiServer]:
    with run_api_server() as server:
        yield server


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = webdriver.Chrome(options=chromium_options(), service=Service(CHROMEDRIVER))
    try:
        yield browser
    finally:
        browser.quit()


class Page:
    """The few moves the test makes in the UI, each waiting for an explicit condition."""

    def __init__(self, driver: Any, server: ApiServer) -> None:
        from selenium.webdriver.support.ui import WebDriverWait

        self.driver = driver
        self.server = server
        self.wait = WebDriverWait(driver, WAIT_S)

    def find(self, by: str, selector: str, clickable: bool = True) -> Any:
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support import expected_conditions as ec

        condition = ec.element_to_be_clickable if clickable else ec.presence_of_element_located
        try:
            element = self.wait.until(condition((by, selector)))
        except TimeoutException:
            shot = SCREENSHOTS / f"failure-{int(time.time())}.png"
            SCREENSHOTS.mkdir(exist_ok=True)
            self.driver.save_screenshot(str(shot))
            raise AssertionError(
                f"no {selector!r} on the page after {WAIT_S} s (screenshot: {shot})"
            ) from None
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        return element

    def log_in_to_connections(self) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        self.driver.get(f"{self.server.url}/connections")
        self.find(By.NAME, "username").send_keys(USERNAME)
        self.find(By.NAME, "password").send_keys(PASSWORD)
        self.find(By.CSS_SELECTOR, "button[type=submit]").click()
        self.wait.until(ec.url_contains("/connections"))
        self.find(By.XPATH, "//button[contains(., 'Add Connection')]")

    def open_new_connection_form(self, conn_id: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        self.find(By.XPATH, "//button[contains(., 'Add Connection')]").click()
        self.find(By.NAME, "connection_id").send_keys(conn_id)
        kind = self.find(By.XPATH, "//*[contains(text(), 'Select Connection Type')]/following::input[1]")
        kind.send_keys("OpenAI-compatible Files")
        self.find(By.XPATH, "//*[contains(@id, '-option-') and normalize-space(.)='OpenAI-compatible Files']")
        kind.send_keys(Keys.ENTER)
        self.find(By.NAME, "host")

    def open_section(self, title: str) -> None:
        from selenium.webdriver.common.by import By

        self.find(
            By.XPATH, f"//button[starts-with(@id, 'accordion:') and normalize-space(.)={title!r}]"
        ).click()

    def gateway_options(self) -> list[str]:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        self.open_section("Extra Fields")
        combobox = self.find(By.CSS_SELECTOR, "#element_gateway input[role=combobox]")
        combobox.send_keys(Keys.ARROW_DOWN)
        self.find(By.CSS_SELECTOR, "#element_gateway [id*='-option-']")
        options = [
            o.text for o in self.driver.find_elements(By.CSS_SELECTOR, "#element_gateway [id*='-option-']")
        ]
        combobox.send_keys(Keys.ENTER)  # keeps the highlighted default, OpenAI
        return options

    def fill_standard_fields(self, host: str, key: str, port: str) -> None:
        from selenium.webdriver.common.by import By

        self.find(By.NAME, "host").send_keys(host)
        self.find(By.NAME, "password").send_keys(key)
        self.find(By.NAME, "port").send_keys(port)

    def save(self, conn_id: str) -> None:
        from selenium.webdriver.common.by import By

        self.find(By.XPATH, "//button[normalize-space(.)='Save']").click()
        self.find(By.XPATH, f"//td[normalize-space(.)={conn_id!r}]")

    def test_in_list(self, conn_id: str) -> tuple[str, str, float]:
        """Click the row's Test button; the title and text of the toast it raises, and the seconds
        from the click to the toast."""
        from selenium.webdriver.common.by import By

        self.driver.get(f"{self.server.url}/connections")  # a fresh page: no toast of an earlier test
        row = f"//tr[td[normalize-space(.)={conn_id!r}]]"
        self.find(By.XPATH, f"{row}//button[@aria-label='Test Connection']").click()
        started = time.monotonic()
        # The toast fades in: wait for its title's text (textContent, which needs no visibility).
        title_xpath = "//*[@data-scope='toast' and @data-part='title' and normalize-space(.)!='']"
        title = self.find(By.XPATH, title_xpath, clickable=False)
        toast = title.find_element(By.XPATH, "./ancestor::*[@data-part='root'][1]")
        descriptions = toast.find_elements(By.XPATH, ".//*[@data-part='description']")
        title_text = str(title.get_attribute("textContent")).strip()
        description_text = str(descriptions[0].get_attribute("textContent")).strip() if descriptions else ""
        elapsed_s = time.monotonic() - started
        return title_text, description_text, elapsed_s


@pytest.fixture(scope="module")
def page(driver: Any, api_server: ApiServer) -> Page:
    ui = Page(driver, api_server)
    ui.log_in_to_connections()
    return ui


def test_the_form_offers_each_gateway_and_saves_no_null(
    page: Page, api_server: ApiServer, ui_emulator: EmulatorHandle
) -> None:
    page.open_new_connection_form("files_ui")
    page.fill_standard_fields(ui_emulator.base_url, KEY, "0")
    options = page.gateway_options()  # opening Extra Fields folds Standard Fields: filled first
    assert options == [GATEWAY_NAMES[g] for g in GATEWAYS]
    assert not any(o.lower() in ("null", "none", "") for o in options)
    page.save("files_ui")

    saved = api_server.api("GET", "/connections/files_ui")
    assert saved["port"] == 0
    extra = json.loads(saved["extra"])
    assert extra["gateway"] == "openai"
    assert set(extra) == set(CONN_FIELDS)
    assert {name for name, value in extra.items() if value is None} == NO_DEFAULT
    assert extra["timeout_s"] == 600 and extra["max_retries"] == 5 and extra["verify_ssl"] is True


def test_the_list_view_test_button_reaches_the_emulator(page: Page, ui_emulator: EmulatorHandle) -> None:
    title, message, _ = page.test_in_list("files_ui")
    assert title == "Test Connection Successful", message
    assert message == f"Connected to {ui_emulator.base_url} (openai); 0 file(s) listed"


def test_the_list_view_test_button_names_a_dead_host_at_once(page: Page, api_server: ApiServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    api_server.api(
        "POST",
        "/connections",
        {
            "connection_id": "files_ui_dead",
            "conn_type": "openai_files",
            "host": dead,
            "port": 0,
            "password": KEY,
            "extra": json.dumps({"gateway": "openai", "max_retries": 5}),
        },
    )
    title, message, elapsed_s = page.test_in_list("files_ui_dead")
    assert title == "Test Connection Failed", message
    assert f"the connection to {dead}" in message and "ConnectError" in message
    assert KEY not in message
    # Five retries with backoff took about 15 s; one refused connect takes milliseconds (plus the UI).
    assert elapsed_s < 10, f"{elapsed_s:.1f} s from the click to the answer"


def test_without_a_port_airflow_refuses_the_list_view_test(
    page: Page, api_server: ApiServer, ui_emulator: EmulatorHandle
) -> None:
    """Why the form keeps the port (the README says so): Airflow 3.3's list view posts an empty port
    as 0, and the API server refuses a test whose port differs from the stored one."""
    api_server.api(
        "POST",
        "/connections",
        {
            "connection_id": "files_ui_no_port",
            "conn_type": "openai_files",
            "host": ui_emulator.base_url,
            "password": KEY,
            "extra": json.dumps({"gateway": "openai"}),
        },
    )
    title, message, _ = page.test_in_list("files_ui_no_port")
    assert title == "Test Connection Failed"
    assert "Connected" not in message
