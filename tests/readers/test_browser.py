"""The reading page in a real browser (issue #20): headless Chromium, driven through Selenium, opens a reader's link,
switches the window preset and scores three cases with the keyboard alone; the answers are in the database, in the
reader's order; a page without a token, another reader's answers and a path-traversal image are refused.

Needs Chromium and its driver (Debian: `apt-get install chromium chromium-driver`); skipped where they are absent."""

from __future__ import annotations

import shutil
import sqlite3

import httpx
import pytest

from helpers import free_port
from helpers.readers import build_folder, order_of, start_server

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromedriver")


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))  # the local driver: nothing downloaded
    yield driver
    driver.quit()


def _wait(driver, condition, what: str, timeout: float = 10):
    """Wait for `condition`; the page re-renders the case after each answer, so an element found a moment ago may be
    gone (stale) or not there yet: both mean "not yet"."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout, ignored_exceptions=ignored).until(lambda d: condition(d), message=what)


def _image(driver) -> str:
    """The shown case image's address, read again until the page holds still."""
    from selenium.webdriver.common.by import By

    return _wait(driver, lambda d: d.find_element(By.CSS_SELECTOR, "img[src*='/output/']").get_attribute("src"),
                 "the case image")


def test_a_reader_scores_three_cases_with_the_keyboard(tmp_path, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    f = build_folder(tmp_path / "readers", n_cases=4)
    tok, port = f["tokens"]["alice"], free_port()
    proc = start_server(f["root"], port, tok)
    try:
        base = f"http://127.0.0.1:{port}"
        browser.get(f"{base}/r/{tok}")
        first = _image(browser)
        body = browser.find_element(By.TAG_NAME, "body")
        body.send_keys("w")  # the next window preset: the same case, another image
        _wait(browser, lambda d: _image(d) != first, "another window preset")
        scores = [[3, 4, 5, 2, 1], [5, 5, 4, 4, 3], [1, 2, 3, 4, 5]]
        for k, values in enumerate(scores):
            shown = _image(browser)
            body.send_keys(*[str(v) for v in values], Keys.ENTER)
            _wait(browser, lambda d: _done(f["root"], "alice") == k + 1 and _image(d) != shown, f"case {k + 1} saved")
        assert _answers(f["root"], "alice") == {case: dict(zip(f["criteria"], values))
                                                for case, values in zip(order_of(f, "alice"), scores)}
        assert "4" in browser.find_element(By.TAG_NAME, "body").text  # "case 4 of 4": resumed at the next case

        browser.get(f"{base}/r/")
        assert "forbidden" in browser.page_source and "<img" not in browser.page_source
        other = order_of(f, "bob")[0]
        r = httpx.post(f"{base}/api/{tok}/answer", json={"case_id": other, "reader": "bob",
                                                          "answers": dict.fromkeys(f["criteria"], 1)})
        assert r.status_code == 200 and _answers(f["root"], "bob") == {}  # written as alice's, never bob's
        browser.get(f"{base}/img/{tok}/..%2Fkey.json/output/soft")
        assert "MARKER" not in browser.page_source and "UNBLINDING" not in browser.page_source
    finally:
        proc.kill()
        proc.wait()


def _answers(root, reader: str) -> dict:
    with sqlite3.connect(root / "answers.sqlite") as db:
        rows = db.execute("SELECT case_id, criterion, value FROM answers WHERE reader = ?", (reader,)).fetchall()
    out: dict = {}
    for case, criterion, value in rows:
        out.setdefault(case, {})[criterion] = value
    return out


def _done(root, reader: str) -> int:
    if not (root / "answers.sqlite").is_file():
        return 0
    return sum(len(v) == 5 for v in _answers(root, reader).values())


def test_the_report_contents_links_jump_to_every_section_and_figure(tmp_path, browser):
    """report.html (issue #28): its table of contents links every section and figure, and each link lands there."""
    from selenium.webdriver.common.by import By

    from analysis.report import update_report
    from helpers.synthetic import results_folder

    report = update_report(results_folder(tmp_path, lams=(0.1,), n_images=12))
    browser.get((report / "report.html").as_uri())
    links = browser.find_elements(By.CSS_SELECTOR, "nav#contents a")
    targets = [a.get_dom_attribute("href").removeprefix("#") for a in links]
    assert "summary" in targets and "design" in targets and any(t.startswith("figure-") for t in targets)
    browser.execute_script("document.querySelectorAll('nav#contents details').forEach(d => d.open = true)")
    at_end = "return window.innerHeight + window.scrollY >= document.body.scrollHeight - 2"
    for target in targets:
        browser.execute_script("window.scrollTo(0, 0)")
        browser.find_element(By.CSS_SELECTOR, f'nav#contents a[href="#{target}"]').click()
        top = browser.execute_script(f"return document.getElementById('{target}').getBoundingClientRect().top")
        assert abs(top) < 5 or browser.execute_script(at_end), (target, top)
        assert browser.execute_script("return location.hash") == f"#{target}"
