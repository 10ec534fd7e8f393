"""The advertiser console in a real browser (Debian's chromium and chromium-driver, Selenium).

Through the test gateway, as an advertiser would: sign in with the admin token; find campaigns
by advertiser; create a campaign with an ad through the form (after the API's validation error
showed next to its field); serve ads for it and click one through its tracking URL; watch the
campaign page show the impressions and the click without a reload; check that the charts and
the table give the same totals as analytics; pause it and see serve stop returning it. A
campaign named like markup renders as text. Throughout: no console error, no request that
leaves the gateway, and the Content-Security-Policy on every console response.

A screenshot of the campaign page is written to `<test state>/artifacts/console-campaign.png`
(for instance .local/test-5/artifacts/); the session's summary prints where.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import (
    NoAlertPresentException,
    StaleElementReferenceException,
    TimeoutException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from localplatform import secrets
from localplatform.components.postgres import connect
from tests.e2e.test_bid_support import GATEWAY, PROFILE, campaign_body, unique_placement
from tests.support import wait_for

CONSOLE = f"{GATEWAY}/function/console/"
CAMPAIGNS = f"{GATEWAY}/function/campaigns"
ANALYTICS = f"{GATEWAY}/function/analytics"
SERVE = f"{GATEWAY}/function/serve"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = PROFILE.state_dir / "artifacts"
MARKUP_NAME = "<img src=x onerror=alert(1)>"
# uPlot draws axis titles on the canvas: the page's text drawing is recorded (and still done).
RECORD_CANVAS_TEXT = """
if (!window.__drawn) {
  window.__drawn = [];
  const draw = CanvasRenderingContext2D.prototype.fillText;
  CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
    window.__drawn.push(String(text));
    return draw.call(this, text, ...rest);
  };
}
window.__drawn.length = 0;
"""


def token() -> str:
    return secrets.read(PROFILE, "campaigns-admin-token")


def admin(method: str, url: str, **kwargs) -> requests.Response:
    headers = {"Authorization": f"Bearer {token()}"}
    return requests.request(method, url, headers=headers, timeout=15, **kwargs)


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"the browser test needs Debian's chromium and chromium-driver ({', '.join(missing)}"
            " missing): apt-get install chromium chromium-driver (bash .ci/run installs them)",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root inside the test namespace
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,1400",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.implicitly_wait(0)
    downloads = tmp_path_factory.mktemp("downloads")
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads  # type: ignore[attr-defined]
    yield driver
    driver.quit()


def wait(driver: WebDriver, condition, timeout_s: float = 15, what: str = ""):
    try:
        stale = (StaleElementReferenceException,)  # the page re-rendered under the condition
        return WebDriverWait(driver, timeout_s, 0.2, ignored_exceptions=stale).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what or condition}") from None


def text_of(driver: WebDriver, css: str) -> str:
    """The text of the first match ("" when none): the page re-renders as numbers arrive."""
    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


def sign_in(driver: WebDriver, key: str | None = None) -> None:
    driver.get(CONSOLE)
    driver.execute_script("sessionStorage.clear()")
    driver.get(CONSOLE + "#/")
    driver.refresh()
    field = wait(driver, lambda d: d.find_element(By.ID, "token"), what="the sign-in form")
    assert driver.title == "Sign in · Ad console"
    field.send_keys(key or token(), Keys.ENTER)  # the keyboard is enough
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#campaigns tbody"), what="the list")


def show_advertiser(driver: WebDriver, advertiser: str) -> None:
    driver.get(CONSOLE + "#/")
    box = wait(driver, lambda d: d.find_element(By.ID, "filter-advertiser"), what="filters")
    box.clear()
    box.send_keys(advertiser)
    driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()


def fill(driver: WebDriver, element_id: str, value: str) -> None:
    element = driver.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(value)


def report(campaign_id: str, start: str, end: str) -> dict:
    query = {"startDate": start, "endDate": end}
    r = admin("GET", f"{ANALYTICS}/campaign/{campaign_id}", params=query)
    assert r.status_code == 200, r.text
    return r.json()


def serve(placement: str) -> requests.Response:
    user = f"console-{uuid.uuid4().hex[:8]}"
    return requests.get(SERVE, params={"userId": user, "placementId": placement}, timeout=10)


def shown(value: float) -> str:
    """A ratio as the page writes it (en-US, 2 to 4 decimals): 20000.0 -> "20,000.00"."""
    text = f"{value:,.4f}"
    while text.endswith("0") and len(text.split(".")[1]) > 2:
        text = text[:-1]
    return text


def served(placement: str) -> requests.Response | None:
    """An ad for the placement, once bid's snapshot has the new campaign (None until then)."""
    r = serve(placement)
    return r if r.status_code == 200 else None


def test_the_console_page_and_assets_carry_strict_headers():
    page = requests.get(CONSOLE, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe" not in csp
    assert page.headers["Cache-Control"] == "no-cache"
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline
    scripts = [part.split('"')[1] for part in page.text.split("src=")[1:]]
    assert scripts and all(s.startswith("/function/console/assets/main-") for s in scripts)
    asset = requests.get(GATEWAY + scripts[0], timeout=10)
    assert asset.status_code == 200 and "immutable" in asset.headers["Cache-Control"]
    assert asset.headers["Content-Security-Policy"] == csp
    etag = {"If-None-Match": asset.headers["ETag"]}
    again = requests.get(GATEWAY + scripts[0], headers=etag, timeout=10)
    assert again.status_code == 304
    # Without the trailing slash it is the same page (its asset paths are absolute).
    assert requests.get(CONSOLE.rstrip("/"), timeout=10).text == page.text
    missing = requests.get(f"{GATEWAY}/function/console/assets/nope.js", timeout=10)
    assert missing.status_code == 404 and set(missing.json()) == {"error", "message", "requestId"}
    # The APIs the page calls still refuse a request without the token.
    assert requests.get(f"{CAMPAIGNS}/", timeout=10).status_code == 401


def complete_download(folder: Path) -> Path | None:
    """The downloaded CSV once Chrome has written it (the file can appear empty first)."""
    for path in folder.glob("*.csv"):
        if path.stat().st_size > 0:
            return path
    return None


def test_an_advertiser_runs_a_campaign_in_the_console(browser):
    driver = browser
    advertiser = str(uuid.uuid4())
    placement = unique_placement("console")
    markup = campaign_body(cpm="1", daily="10", rules=[("placement", unique_placement("x"))])
    markup.update(advertiserId=advertiser, name=MARKUP_NAME, status="paused")
    r = admin("POST", f"{CAMPAIGNS}/", json=markup)
    assert r.status_code == 201, r.text
    markup_id = r.json()["id"]

    sign_in(driver)
    assert "token" not in driver.current_url.lower() and token() not in driver.current_url
    assert console_errors(driver) == []  # the page loads and lists without an error

    # The list: the advertiser's campaign, its name as text (no image, no alert).
    show_advertiser(driver, advertiser)
    row = f'#campaigns tr[data-campaign-id="{markup_id}"]'
    wait(driver, lambda d: text_of(d, f"{row} .campaign-name") == MARKUP_NAME, what="the list row")
    assert driver.find_elements(By.CSS_SELECTOR, "#campaigns img") == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / "console-list.png"))
    sort = driver.find_element(By.CSS_SELECTOR, "#campaigns thead th:first-child button")
    sort.send_keys(Keys.ENTER)
    first = "#campaigns thead th:first-child"
    wait(
        driver,
        lambda d: d.find_element(By.CSS_SELECTOR, first).get_attribute("aria-sort") == "descending",
    )
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018

    # Create a campaign with an ad through the form; the API's 400 shows next to its field.
    driver.find_element(By.CSS_SELECTOR, "a.button[href='#/campaigns/new']").click()
    wait(driver, lambda d: d.find_elements(By.ID, "campaign-name"), what="the form")
    unlabelled = driver.execute_script(
        "return [...document.querySelectorAll('input, select, textarea')]"
        ".filter(e => !e.labels.length && !e.getAttribute('aria-label')).map(e => e.id)"
    )
    assert unlabelled == [], unlabelled
    fill(driver, "campaign-name", "Console launch")
    fill(driver, "campaign-advertiserId", advertiser)
    fill(driver, "campaign-cpmBid", "0")
    fill(driver, "campaign-dailyBudget", "100000")
    driver.find_element(By.ID, "add-rule").click()
    Select(driver.find_elements(By.CSS_SELECTOR, "#rules select")[0]).select_by_value("placement")
    driver.find_elements(By.CSS_SELECTOR, "#rules input")[0].send_keys(placement)
    ad_inputs = driver.find_elements(By.CSS_SELECTOR, "#ads input")
    for element, value in zip(
        ad_inputs,
        ["Console ad", "https://cdn.example.com/console.png", "https://example.com/console"],
        strict=True,
    ):
        element.send_keys(value)
    driver.find_element(By.ID, "save").click()
    error = wait(
        driver,
        lambda d: text_of(d, "#campaign-cpmBid-error"),
        what="the cpmBid error next to its field",
    )
    assert "greater than 0" in error
    assert driver.find_element(By.ID, "campaign-cpmBid").get_attribute("aria-invalid") == "true"
    assert text_of(driver, "#campaign-dailyBudget-error") == ""
    driver.save_screenshot(str(ARTIFACTS / "console-form-error.png"))
    fill(driver, "campaign-cpmBid", "20000")
    driver.find_element(By.ID, "save").click()
    wait(driver, lambda d: "#/campaigns/" in d.current_url and text_of(d, "#campaign-name"))
    campaign_id = driver.current_url.rsplit("/", 1)[-1]
    assert text_of(driver, "#campaign-name") == "Console launch"
    assert text_of(driver, "#campaign-status") == "active"
    wait(driver, lambda d: text_of(d, "#live-impressions") == "0", what="today's numbers")
    driver.execute_script("window.__sameDocument = 'yes'")

    # Serve two ads for it and click one through its tracking URL.
    ads = [wait_for(lambda: served(placement), 10) for _ in range(2)]
    assert [a.status_code for a in ads] == [200, 200], [a.text for a in ads]
    assert {a.json()["campaignId"] for a in ads} == {campaign_id}
    click = requests.get(ads[0].json()["clickTrackingUrl"], allow_redirects=False, timeout=10)
    assert click.status_code == 302, click.text

    # The page shows them within a few seconds, without a reload.
    wait(
        driver,
        lambda d: (text_of(d, "#live-impressions"), text_of(d, "#live-clicks")) == ("2", "1"),
        timeout_s=20,
        what="2 impressions and 1 click on the live panel",
    )
    assert driver.execute_script("return window.__sameDocument") == "yes"

    # Charts and table: the same totals as analytics for the same range.
    start = driver.find_element(By.ID, "report-start").get_attribute("value")
    end = driver.find_element(By.ID, "report-end").get_attribute("value")
    expected = report(campaign_id, start, end)["summary"]
    assert (expected["totalImpressions"], expected["totalClicks"]) == (2, 1)
    wanted = {
        "impressions": f"{expected['totalImpressions']:,}",
        "clicks": f"{expected['totalClicks']:,}",
        "spend": f"{expected['totalSpend']:,.2f}",
        "ctr": f"{shown(expected['ctr'])} %",
        "cpc": shown(expected["cpc"]),
        "cpm": shown(expected["cpm"]),
    }
    totals = "#report-totals td[data-total='{}']"
    wait(
        driver,
        lambda d: all(text_of(d, totals.format(k)) == v for k, v in wanted.items()),
        what=f"table totals {wanted}",
    )
    for key, value in wanted.items():
        assert text_of(driver, f"[data-chart-total='{key}']") == value, key
    days = driver.find_elements(By.CSS_SELECTOR, "#report-table tbody tr")
    assert len(days) == len(report(campaign_id, start, end)["dailyMetrics"])
    assert len(driver.find_elements(By.CSS_SELECTOR, "#charts canvas")) == 6

    # Each chart titles its axes, and shows the hovered day with its value.
    driver.execute_script(RECORD_CANVAS_TEXT)
    driver.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
    titles = {"Day (UTC)", "Impressions", "Clicks", "CTR (%)", "Spend", "CPC", "CPM"}
    wait(
        driver,
        lambda d: titles <= set(d.execute_script("return window.__drawn")),
        what=f"the axis titles {titles} drawn",
    )
    hover_right_edge(driver, "#charts figure:first-child .u-over")
    legend = "#charts figure:first-child .u-legend"
    wait(
        driver,
        lambda d: (
            [e.text for e in d.find_elements(By.CSS_SELECTOR, f"{legend} .u-value")] == [end, "2"]
        ),
        what="the last day and its 2 impressions under the hovered chart",
    )

    # The CSV download holds the same days and totals.
    driver.find_element(By.ID, "download-csv").click()
    csv_file = wait_for(lambda: complete_download(driver.downloads), 10)
    assert csv_file is not None, "no CSV downloaded"
    lines = csv_file.read_text().splitlines()
    assert lines[0] == "date,impressions,clicks,ctr,spend,cpc,cpm"
    assert lines[-1].split(",")[:3] == ["total", "2", "1"] and len(lines) == len(days) + 2

    shot = ARTIFACTS / "console-campaign.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    phone = ARTIFACTS / "console-campaign-phone.png"
    driver.set_window_size(390, 900)
    wait(driver, lambda d: d.execute_script("return document.documentElement.scrollWidth") <= 400)
    driver.save_screenshot(str(phone))
    driver.set_window_size(1280, 1400)

    # Edit: the form comes back filled in; a new name is saved.
    driver.find_element(By.CSS_SELECTOR, f"a.button[href='#/campaigns/{campaign_id}/edit']").click()
    wait(driver, lambda d: d.find_element(By.ID, "campaign-name").get_attribute("value"))
    assert driver.find_element(By.ID, "campaign-cpmBid").get_attribute("value") == "20000"
    fill(driver, "campaign-name", "Console launch, renamed")
    driver.find_element(By.ID, "save").click()
    wait(driver, lambda d: text_of(d, "#campaign-name") == "Console launch, renamed")
    wait(driver, lambda d: d.find_elements(By.ID, "toggle-status"), what="the pause button")

    # Pause: the page says so, and serve stops returning the campaign.
    driver.find_element(By.ID, "toggle-status").click()
    wait(driver, lambda d: text_of(d, "#campaign-status") == "paused", what="paused status")
    assert admin("GET", f"{CAMPAIGNS}/{campaign_id}").json()["status"] == "paused"

    def not_served() -> bool:
        r = serve(placement)
        return r.status_code == 204 or r.json().get("campaignId") != campaign_id

    assert wait_for(not_served, 10, 0.3), "serve still returns the paused campaign"

    # The markup-named campaign's own page renders its name as text too.
    driver.get(f"{CONSOLE}#/campaigns/{markup_id}")
    wait(driver, lambda d: text_of(d, "#campaign-name") == MARKUP_NAME, what="the heading")
    assert driver.find_elements(By.CSS_SELECTOR, "main img") == []

    # The one error the console saw is the 400 the form was meant to provoke.
    errors = console_errors(driver)
    assert [e["source"] for e in errors] == ["network"], errors
    assert "/function/campaigns/ " in errors[0]["message"] and "400" in errors[0]["message"]
    assert_every_request_stayed_on_the_gateway(driver)
    for cid in (campaign_id, markup_id):
        admin("DELETE", f"{CAMPAIGNS}/{cid}")


def hover_right_edge(driver: WebDriver, css: str) -> None:
    """The pointer over a plot, just inside its right edge (the range's last day)."""
    plot = driver.find_element(By.CSS_SELECTOR, css)
    ActionChains(driver).move_to_element_with_offset(plot, plot.size["width"] // 2 - 2, 0).perform()


def console_errors(driver: WebDriver) -> list[dict]:
    """Errors the page's console recorded since the last call (script errors, CSP violations,
    failed requests)."""
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def assert_every_request_stayed_on_the_gateway(driver: WebDriver) -> None:
    gateway = urlsplit(GATEWAY)
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    assert urls, "the performance log recorded no request"
    # Only requests that go over the network count: the browser's own chrome:// pages (the
    # new tab it starts with) and the page's data: and blob: URLs never leave it.
    network = [u for u in urls if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert any(u.startswith(CONSOLE) for u in network), network
    elsewhere = [u for u in network if urlsplit(u).netloc != gateway.netloc]
    assert elsewhere == [], elsewhere
    assert not any(token() in u for u in urls), "the token appeared in a URL"


def test_saving_an_edit_unchanged_keeps_every_setting_the_form_does_not_show(browser):
    """The case the console lost: pacing even, time zone Europe/Paris and a cap of 3 a day,
    made through the API, survive "Save changes" pressed without touching anything."""
    body = {
        **campaign_body(
            cpm="1.50", daily="20", lifetime="200", rules=[("placement", unique_placement())]
        ),
        "pacing": "even",
        "timeZone": "Europe/Paris",
        "frequencyCap": {"impressions": 3, "windowSeconds": 86_400},
        "status": "paused",
    }
    made = admin("POST", CAMPAIGNS, json=body)
    assert made.status_code == 201, made.text
    before = made.json()
    try:
        sign_in(browser)
        browser.get(CONSOLE + f"#/campaigns/{before['id']}/edit")
        wait(
            browser,
            lambda d: d.find_element(By.ID, "campaign-name").get_attribute("value"),
            what="the form filled from the campaign",
        )
        assert browser.title == "Edit campaign · Ad console"
        shown = {
            name: browser.find_element(By.ID, f"campaign-{name}").get_attribute("value")
            for name in ("pacing", "timeZone", "capImpressions", "capWindow")
        }
        assert shown == {
            "pacing": "even",
            "timeZone": "Europe/Paris",
            "capImpressions": "3",
            "capWindow": "86400",
        }
        browser.find_element(By.ID, "save").click()
        back = f"#/campaigns/{before['id']}"
        wait(
            browser,
            lambda d: d.execute_script("return location.hash") == back,
            what="the campaign page after saving",
        )
        after = admin("GET", f"{CAMPAIGNS}/{before['id']}").json()
        for kept in (
            "pacing", "timeZone", "frequencyCap", "status", "cpmBid", "dailyBudget",
            "lifetimeBudget", "targetingRules", "ads", "advertiserId", "name",
        ):  # fmt: skip
            assert after[kept] == before[kept], kept
        assert after["updatedAt"] >= before["updatedAt"]

        # The form edits them too: front-loaded, New York's day, 5 an hour; then no cap.
        browser.get(CONSOLE + f"#/campaigns/{before['id']}/edit")
        wait(
            browser,
            lambda d: d.find_element(By.ID, "campaign-capImpressions").get_attribute("value"),
            what="the form filled again",
        )
        Select(browser.find_element(By.ID, "campaign-pacing")).select_by_value("frontloaded")
        fill(browser, "campaign-timeZone", "America/New_York")
        fill(browser, "campaign-capImpressions", "5")
        Select(browser.find_element(By.ID, "campaign-capWindow")).select_by_value("3600")
        browser.find_element(By.ID, "save").click()
        wait(browser, lambda d: d.execute_script("return location.hash") == back, what="saved")
        edited = admin("GET", f"{CAMPAIGNS}/{before['id']}").json()
        assert (edited["pacing"], edited["timeZone"], edited["frequencyCap"]) == (
            "frontloaded",
            "America/New_York",
            {"impressions": 5, "windowSeconds": 3600},
        )
        browser.get(CONSOLE + f"#/campaigns/{before['id']}/edit")
        wait(
            browser,
            lambda d: d.find_element(By.ID, "campaign-capImpressions").get_attribute("value"),
            what="the form filled a third time",
        )
        fill(browser, "campaign-capImpressions", "")
        browser.find_element(By.ID, "save").click()
        wait(browser, lambda d: d.execute_script("return location.hash") == back, what="saved")
        assert admin("GET", f"{CAMPAIGNS}/{before['id']}").json()["frequencyCap"] is None
    finally:
        admin("DELETE", f"{CAMPAIGNS}/{before['id']}")


def test_an_advertisers_session_shows_none_of_another_advertisers_campaigns(browser):
    def made(path: str, body: dict) -> dict:
        r = admin("POST", f"{CAMPAIGNS}{path}", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    a = made("/advertisers", {"name": f"Console A {uuid.uuid4().hex[:6]}", "currency": "EUR"})["id"]
    b = made("/advertisers", {"name": f"Console B {uuid.uuid4().hex[:6]}"})["id"]
    key = made("/keys", {"role": "advertiser", "advertiserId": a})["key"]
    body = campaign_body(cpm="1.00", daily="10", rules=[("placement", unique_placement())])
    own = made("", {**body, "advertiserId": a, "name": "Own one", "status": "paused"})
    other = made("", {**body, "advertiserId": b, "name": "Not yours", "status": "paused"})
    try:
        sign_in(browser, key)
        wait(
            browser,
            lambda d: own["id"] in d.find_element(By.ID, "campaigns").get_attribute("innerHTML"),
            what="the advertiser's own campaign in the list",
        )
        page = browser.find_element(By.ID, "main").get_attribute("innerHTML")
        assert other["id"] not in page and "Not yours" not in page
        assert "€10.00" in browser.find_element(By.ID, "campaigns").text  # its currency
        browser.get(CONSOLE + f"#/campaigns/{other['id']}")
        wait(
            browser,
            lambda d: "does not exist" in d.find_element(By.ID, "main").text,
            what="another advertiser's campaign answered as unknown",
        )
        assert "Not yours" not in browser.find_element(By.ID, "main").text
        assert browser.title == "Campaign · Ad console"
        browser.get(CONSOLE + "#/campaigns/new")
        wait(
            browser,
            lambda d: d.find_element(By.ID, "campaign-advertiserId").get_attribute("value") == a,
            what="a new campaign's advertiser filled in with the key's own",
        )
        assert browser.find_element(By.ID, "campaign-advertiserId").get_attribute("readOnly")
        assert browser.title == "New campaign · Ad console"
        ring = browser.execute_script(
            "const e = document.getElementById('campaign-name'); e.focus();"
            "return getComputedStyle(e).outlineColor;"
        )
        assert (
            contrast(ring, "rgb(255, 255, 255)") >= 3 and contrast(ring, "rgb(245, 246, 248)") >= 3
        )
    finally:
        for campaign in (own, other):
            admin("DELETE", f"{CAMPAIGNS}/{campaign['id']}")


def test_a_failed_query_leaves_no_stale_rows_on_screen(browser):
    made = admin("POST", CAMPAIGNS, json=campaign_body(cpm="1.00", daily="10", title="Stale"))
    assert made.status_code == 201, made.text
    try:
        sign_in(browser)
        wait(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#campaigns tbody tr"),
            what="rows in the list",
        )
        assert browser.title == "Campaigns · Ad console"
        fill(browser, "filter-advertiser", "not-a-uuid")  # the API answers 400
        browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
        wait(
            browser,
            lambda d: "Could not load" in text_of(d, "#main .alert"),
            what="the error shown",
        )
        assert browser.find_elements(By.CSS_SELECTOR, "#campaigns tbody tr") == []

        # A campaign's report for a range the API refuses: its message, no charts, no rows.
        browser.get(CONSOLE + f"#/campaigns/{made.json()['id']}")
        wait(
            browser,
            lambda d: (
                len(d.find_elements(By.CSS_SELECTOR, "#charts canvas")) == 6
                and d.find_elements(By.CSS_SELECTOR, "#report-table tbody tr")
            ),
            what="the report's charts and rows",
        )
        browser.execute_script(
            "const end = document.getElementById('report-end').value;"
            "const after = new Date(end + 'T00:00:00Z');"
            "after.setUTCDate(after.getUTCDate() + 1);"
            "document.getElementById('report-start').value = after.toISOString().slice(0, 10);"
        )
        browser.find_element(By.CSS_SELECTOR, "#report-form button[type=submit]").click()
        wait(browser, lambda d: text_of(d, "#report-range-error"), what="the API's 400 shown")
        assert browser.find_elements(By.CSS_SELECTOR, "#charts canvas, #charts figure") == []
        assert browser.find_elements(By.CSS_SELECTOR, "#report-table tr") == []
        assert not browser.find_element(By.ID, "download-csv").is_enabled()
    finally:
        admin("DELETE", f"{CAMPAIGNS}/{made.json()['id']}")


def test_the_list_sorts_and_searches_every_campaign_on_the_server(browser):
    """Over more than a page of campaigns: sorting by spend shows the real top spender first and
    a name search finds a campaign the first page does not hold; the numbers of a page come from
    one analytics request."""

    def made(path: str, body: dict) -> dict:
        r = admin("POST", f"{CAMPAIGNS}{path}", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    advertiser = made(
        "/advertisers", {"name": f"Console many {uuid.uuid4().hex[:6]}", "currency": "USD"}
    )["id"]
    key = made("/keys", {"role": "advertiser", "advertiserId": advertiser})["key"]
    body = campaign_body(cpm="1.00", daily="500", rules=[("placement", unique_placement())])
    needle = f"zz needle {uuid.uuid4().hex[:6]}"  # last by name: beyond the first page
    names = [f"Many {n:02d}" for n in range(55)] + ["zz top spender", needle]
    ids = [str(uuid.uuid4()) for _ in names]
    campaigns = [
        {**body, "id": i, "advertiserId": advertiser, "name": n, "status": "paused"}
        for i, n in zip(ids, names, strict=True)
    ]
    made("/bulk", {"campaigns": campaigns})
    top = ids[names.index("zz top spender")]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    spends = {i: Decimal(n % 5 + 1) for n, i in enumerate(ids)} | {top: Decimal(122)}
    conn = connect(PROFILE)
    try:
        for campaign_id, spend in spends.items():
            conn.run(
                "INSERT INTO hourly_metrics (hour, campaign_id, ad_id, impressions, clicks, spend)"
                " VALUES (:h, CAST(:c AS uuid), CAST(:a AS uuid), 1000, 3, :s)",
                h=hour,
                c=campaign_id,
                a=str(uuid.uuid4()),
                s=spend,
            )
    finally:
        conn.close()
    try:
        sign_in(browser, key)
        rows = "#campaigns tbody tr"
        wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, rows)) == 50, what="a page")
        assert top not in browser.find_element(By.ID, "campaigns").get_attribute("innerHTML")
        wait(browser, lambda d: "…" not in text_of(d, "#campaigns tbody"), what="the numbers")
        browser.get_log("performance")  # from here on: the requests of the sorted list
        spend = browser.find_element(By.XPATH, "//th/button[normalize-space()='Spend']")
        spend.click()
        first = f"{rows}:first-child"
        wait(
            browser,
            lambda d: (
                d.find_elements(By.CSS_SELECTOR, first)
                and d.find_element(By.CSS_SELECTOR, first).get_attribute("data-campaign-id") == top
                and text_of(d, f"{first} td.spend") == "$122.00"
            ),
            what="the real top spender first, with its spend",
        )
        assert (
            browser.find_element(By.XPATH, "//th[button='Spend']").get_attribute("aria-sort")
            == "descending"
        )
        second = browser.find_elements(By.CSS_SELECTOR, rows)[1].get_attribute("data-campaign-id")
        assert spends[second] == 5
        requested = [
            m["params"]["request"]["url"]
            for m in (json.loads(e["message"])["message"] for e in browser.get_log("performance"))
            if m["method"] == "Network.requestWillBeSent"
        ]
        assert len([u for u in requested if u.startswith(ANALYTICS)]) == 1, requested

        fill(browser, "filter-text", "NEEDLE")
        wait(
            browser,
            lambda d: (
                [
                    r.get_attribute("data-campaign-id")
                    for r in d.find_elements(By.CSS_SELECTOR, rows)
                ]
                == [ids[names.index(needle)]]
            ),
            what="the one campaign whose name matches, found on the server",
        )
    finally:
        conn = connect(PROFILE)
        try:
            conn.run(
                "DELETE FROM hourly_metrics WHERE campaign_id = ANY(CAST(:c AS uuid[]))", c=ids
            )
        finally:
            conn.close()
        for campaign_id in ids:
            admin("DELETE", f"{CAMPAIGNS}/{campaign_id}")


def test_the_reports_page_charts_the_range_and_downloads_the_apis_csv(browser):
    """The Reports page of an advertiser's key: a chart with axis titles, a table by the chosen
    dimensions, and a CSV download byte for byte the API's CSV of the same query."""

    def made(path: str, body: dict) -> dict:
        r = admin("POST", f"{CAMPAIGNS}{path}", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    advertiser = made("/advertisers", {"name": f"Console reports {uuid.uuid4().hex[:6]}"})["id"]
    key = made("/keys", {"role": "advertiser", "advertiserId": advertiser})["key"]
    body = campaign_body(cpm="1.00", daily="10", rules=[("placement", unique_placement())])
    campaign = made("", {**body, "advertiserId": advertiser, "status": "paused"})
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    conn = connect(PROFILE)
    try:
        for country, spend in (("US", Decimal("1.25")), ("DE", Decimal("0.5"))):
            conn.run(
                "INSERT INTO hourly_metrics (hour, campaign_id, ad_id, country, impressions,"
                " clicks, spend) VALUES (:h, CAST(:c AS uuid), CAST(:a AS uuid), :k, 500, 4, :s)",
                h=hour,
                c=campaign["id"],
                a=campaign["ads"][0]["id"],
                k=country,
                s=spend,
            )
    finally:
        conn.close()
    try:
        sign_in(browser, key)
        browser.get(CONSOLE + "#/reports")
        wait(browser, lambda d: d.title == "Reports · Ad console", what="the page title")
        browser.execute_script(RECORD_CANVAS_TEXT)
        browser.find_element(By.ID, "dim-country").click()
        browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
        wait(
            browser,
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#report-table tbody tr")) == 2,
            what="a row per country",
        )
        assert browser.find_elements(By.CSS_SELECTOR, "#report-chart canvas")
        titles = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#report-chart .u-label")]
        assert "Impressions" in titles and "Spend" in titles, titles  # the legend's series
        drawn = browser.execute_script("return window.__drawn")
        assert {"Day (UTC)", "Impressions", "Spend"} <= set(drawn), drawn  # the axis titles
        hover_right_edge(browser, "#report-chart .u-over")
        today = hour.date().isoformat()
        wait(
            browser,
            lambda d: (
                [e.text for e in d.find_elements(By.CSS_SELECTOR, "#report-chart .u-value")]
                == [today, "1,000", "$1.75"]
            ),
            what="today's impressions and spend under the hovered chart",
        )
        button = browser.find_element(By.ID, "report-csv")
        wait(browser, lambda d: button.is_enabled(), what="the CSV ready")
        query = button.get_attribute("data-query")
        for old in browser.downloads.glob("*"):
            old.unlink()
        button.click()
        downloaded = wait(browser, lambda d: complete_download(browser.downloads), what="the CSV")
        api = requests.get(
            f"{ANALYTICS}/report?{query}&format=csv",
            headers={"Authorization": f"Bearer {key}"},
            timeout=15,
        )
        assert api.status_code == 200, api.text
        assert downloaded.read_bytes() == api.content
        assert api.text.count("\r\n") == 3 and ",US," in api.text and ",DE," in api.text

        # The network fails under the next query: its message, and no chart or row of before.
        browser.execute_script("window.fetch = () => Promise.reject(new TypeError('network down'))")
        browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
        wait(browser, lambda d: "network down" in text_of(d, "#main .alert"), what="the error")
        assert browser.find_elements(By.CSS_SELECTOR, "#report-chart canvas") == []
        assert browser.find_elements(By.CSS_SELECTOR, "#report-table tr") == []
        assert not browser.find_element(By.ID, "report-csv").is_enabled()
    finally:
        conn = connect(PROFILE)
        try:
            conn.run(
                "DELETE FROM hourly_metrics WHERE campaign_id = CAST(:c AS uuid)", c=campaign["id"]
            )
        finally:
            conn.close()
        admin("DELETE", f"{CAMPAIGNS}/{campaign['id']}")


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS rgb() colours."""

    def luminance(css: str) -> float:
        channels = [int(v) / 255 for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_a_campaigns_page_tests_a_request_with_the_decision_explainer(browser):
    """The campaign page's "Test a request": the admin's request goes through serve with the
    explainer, and the page says who won at what price and why this campaign did not."""
    placement = unique_placement("console-explain")
    made = [
        admin(
            "POST",
            CAMPAIGNS,
            json=campaign_body(cpm=cpm, daily="100", rules=[("placement", placement)]),
        )
        for cpm in ("5", "1")
    ]
    assert all(r.status_code == 201 for r in made), [r.text for r in made]
    winner, mine = (r.json()["id"] for r in made)
    try:
        assert wait_for(lambda: served(placement), 10), "bid never saw the campaigns"
        sign_in(browser)
        console_errors(browser)  # from here on: this page's
        browser.get(CONSOLE + f"#/campaigns/{mine}")
        wait(browser, lambda d: d.find_elements(By.ID, "test-send"), what="the test form")
        assert browser.find_element(By.ID, "test-placementId").get_attribute("value") == placement
        assert text_of(browser, "#campaign-tier") == "standard"
        browser.find_element(By.ID, "test-send").click()
        wait(
            browser, lambda d: "higher bid" in text_of(d, "#test-this-campaign"), what="the answer"
        )
        assert winner in text_of(browser, "#test-winner")
        reasons = {
            row.find_element(By.TAG_NAME, "th").text: row.find_element(
                By.CSS_SELECTOR, "td[data-reason]"
            ).get_attribute("data-reason")
            for row in browser.find_elements(By.CSS_SELECTOR, "#test-candidates tbody tr")
        }
        assert reasons == {winner: "won", mine: "lower-bid"}
        assert browser.find_element(By.CSS_SELECTOR, "#test-candidates tr.this th").text == mine
        assert not console_errors(browser)
    finally:
        for campaign_id in (winner, mine):
            admin("DELETE", f"{CAMPAIGNS}/{campaign_id}")
