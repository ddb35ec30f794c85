"""The clinicians' page, driven in a real headless browser (Debian's chromium through chromedriver
and Selenium) against the real service on 127.0.0.1: the form is filled the way a person would,
and what the page shows is checked against the library's own answer for the same case.

Screenshots are kept under test-artifacts/page/ (gitignored); the path is printed at the end.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from guidance_rules.model import Case
from guidance_rules.recommendation.recommender import Recommender
from guidance_rules.recommendation.whatif import inputs_that_matter
from tests.conftest import EXAMPLES, ROOT
from tests.service.conftest import Server
from tests.service.fhir_examples import SCT, coding, hook_request, injection

selenium = pytest.importorskip("selenium", reason="selenium is not installed (it is in the dev extra: pip install -e '.[dev]')")
from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import ElementClickInterceptedException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service as DriverService  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver; .ci/run does it)",
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1800",
]
ARTIFACTS = ROOT / "test-artifacts" / "page"
SELECT = "/cds-services/guidance-rules-order-select"
# Catalogue cases of every kind: landmark, ultrasound, fluoroscopy, both; spinal; no site; variances; equipment.
CASES = [
    "01-knee-steroid",
    "06-hip-contrast",
    "15-carpal-tunnel",
    "25-medial-branch-block",
    "31-atypical-anatomy-knee",
    "32-hip-no-ultrasound-in-clinic",
    "33-custom-superficial-ligament",
]


def example(name: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())["case"]
    return case


@pytest.fixture(scope="module")
def recommender() -> Iterator[Recommender]:
    with Recommender() as rec:
        yield rec


@pytest.fixture(scope="module")
def shots(request: pytest.FixtureRequest) -> Iterator[list[Path]]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []
    yield taken
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if taken and capture is not None:
        with capture.global_and_fixture_disabled():  # shown even when output is captured
            print(f"\npage screenshots ({len(taken)}) kept in {ARTIFACTS}")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=DriverService(str(DRIVER)), options=options)
    except WebDriverException as error:
        pytest.skip(f"chromium could not be started through chromedriver: {error.msg}")
    try:
        yield driver
    finally:
        driver.quit()


class Page:
    """The page in the browser, with the waits a person would do implicitly."""

    def __init__(self, driver: WebDriver, server: Server, shots: list[Path]):
        self.driver, self.server, self.shots = driver, server, shots

    def open(self, query: str = "") -> Page:
        self.driver.get_log("browser")  # drain what earlier pages logged
        self.driver.get(f"{self.server.url}/page{'?' + query if query else ''}")
        return self.settle()

    def settle(self, timeout: float = 30) -> Page:
        """Wait until the page shows the answer (or the problems) for what the form holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.js("return document.body.dataset.pending") == "0":
                return self
            time.sleep(0.05)
        raise AssertionError(f"the page did not settle; state={self.state}, log={self.driver.get_log('browser')}")

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    @property
    def state(self) -> str:
        return str(self.js("return document.body.dataset.state"))

    @property
    def sent(self) -> dict[str, Any]:
        """The case the shown answer is for, as the page sent it to the service."""
        sent: dict[str, Any] = json.loads(self.js("return document.body.dataset.case"))
        return sent

    def find(self, css: str) -> Any:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list[Any]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def texts(self, css: str) -> list[str]:
        return [e.text for e in self.all(css)]

    def click(self, element: Any) -> None:
        """Click as a person would: if the page is still moving (an answer arriving re-lays the
        hints) and something covers the element, wait for it to settle, bring it into view, retry."""
        try:
            element.click()
        except ElementClickInterceptedException:
            self.settle()
            self.js("arguments[0].scrollIntoView({block: 'center'})", element)
            element.click()

    def fill(self, case: dict[str, Any]) -> Page:
        """Set every field by clicking and choosing, as a person would: the case's values, and
        "not known" for every field the case leaves out."""
        for name in Case.model_fields:
            value = case.get(name)
            kind = self.js("return document.getElementById(arguments[0]).tagName", f"field-{name}")
            if kind == "DIV":  # a select
                Select(self.find(f"#f-{name}")).select_by_value("" if value is None else str(value))
            elif self.all(f"#f-{name}-true"):  # a flag
                self.click(self.find(f"#f-{name}-{'unknown' if value is None else str(value).lower()}"))
            else:  # a list
                unknown = self.find(f"#f-{name}-unknown")
                if value is None:
                    if not unknown.is_selected():
                        self.click(unknown)
                    continue
                if unknown.is_selected():
                    self.click(unknown)
                for box in self.all(f"#field-{name} input[data-item]"):
                    if box.is_selected() != (box.get_attribute("value") in value):
                        self.click(box)
        return self.settle()

    def shot(self, name: str, height: int | None = None) -> Path:
        if height is None:
            height = int(self.js("return document.documentElement.scrollHeight"))
        self.driver.set_window_size(1280, height)
        self.js("window.scrollTo(0, 0)")
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1280, 1800)
        self.shots.append(path)
        return path

    def visible_errors(self) -> dict[str, str]:
        return {e.get_attribute("id").removeprefix("error-"): e.text for e in self.all(".error") if e.is_displayed()}


@pytest.fixture
def page(browser: WebDriver, server: Server, shots: list[Path]) -> Page:
    return Page(browser, server, shots)


def normalised(case: dict[str, Any]) -> dict[str, Any]:
    return {k: sorted(v) if isinstance(v, list) else v for k, v in case.items()}


def check_answer(page: Page, case: dict[str, Any], rec: Recommender) -> None:
    """What the page shows is the library's answer for the case, part by part."""
    expected = rec.recommend(case)
    assert page.state == "ready", page.texts("#status")
    assert normalised(page.sent) == normalised(case)
    assert page.find("#modality").get_attribute("data-modality") == expected.modality.value
    assert [e.get_attribute("data-rule") for e in page.all("#steps > li")] == [s.rule for s in expected.reasoning]
    shown = {r.get_attribute("data-modality"): r.get_attribute("data-category") for r in page.all("#ratings tbody tr")}
    assert shown == {m: expected.ratings[m].category.value for m in ("ultrasound", "fluoroscopy", "both", "landmark")}
    assert [e.get_attribute("data-field") for e in page.all("#assumptions > li")] == [a.field for a in expected.assumptions]
    matters = {a.field for a in inputs_that_matter(case, rec) if a.matters}
    assert {e.get_attribute("data-field") for e in page.all("#assumptions > li.matters")} == matters
    for section, notes in (("cautions", expected.cautions), ("documentation", expected.documentation), ("questions", expected.questions)):
        assert [e.get_attribute("data-rule") for e in page.all(f"#{section} > li[data-rule]")] == [n.rule for n in notes]
    assert len(page.all("#evidence tbody tr")) == len(expected.evidence)
    assert page.visible_errors() == {}
    assert [e for e in page.driver.get_log("browser") if e["source"] == "javascript"] == [], "no script errors"


@pytest.mark.parametrize("name", CASES)
def test_filled_form_shows_the_library_answer(page: Page, recommender: Recommender, name: str) -> None:
    case = example(name)
    page.open().fill(case)
    check_answer(page, case, recommender)
    page.shot(f"case-{name}")


def test_site_defaults_are_shown_as_not_known_values(page: Page, recommender: Recommender) -> None:
    page.open().fill({"site": "hip", "injectate": "corticosteroid"})
    site = recommender.knowledge.sites["hip"]
    for field, value in site.defaults.items():
        if field in ("palpable", "near_neurovascular", "bone_obscures_path"):
            text = page.find(f"#assumed-{field}").text
            assert text == f"→ {'yes' if value else 'no'} ({site.title} default)"
        else:
            option = Select(page.find(f"#f-{field}")).first_selected_option
            assert option.get_attribute("value") == "" and option.text == f"Not known → {value.replace('_', ' ')} ({site.title} default)"
    # a default, once changed, is given: it leaves the assumptions and the answer follows
    page.click(page.find("#f-near_neurovascular-false"))
    page.settle()
    assert page.sent["near_neurovascular"] is False
    assert "near_neurovascular" not in [e.get_attribute("data-field") for e in page.all("#assumptions > li")]
    check_answer(page, {"site": "hip", "injectate": "corticosteroid", "near_neurovascular": False}, recommender)


def test_an_assumption_that_matters_is_highlighted_with_what_would_change(page: Page, recommender: Recommender) -> None:
    case = example("01-knee-steroid")  # (a hip's depth no longer counts: its anatomy fixes it, issue 19)
    page.open().fill(case)
    found = {a.field: a for a in inputs_that_matter(case, recommender) if a.matters}
    assert found, "the knee steroid case rests on at least one assumption (palpable)"
    for field, assumed in found.items():
        item = page.find(f"#assumptions > li.matters[data-field='{field}']")
        assert "MATTERS" in item.text.upper() and "ASSUMED" in item.text.upper()
        for outcome in assumed.otherwise:
            assert f"→ {outcome.modality.value}" in item.text
    page.shot("assumption-matters", height=1400)


def test_invalid_values_are_named_beside_their_field_and_the_page_recovers(page: Page, recommender: Recommender) -> None:
    page.open("site=kne&injectate=corticosteroid")
    assert page.state == "invalid"
    errors = page.visible_errors()
    assert list(errors) == ["site"] and "did you mean 'knee'" in errors["site"]
    assert page.find("#f-site").get_attribute("aria-invalid") == "true"
    assert not page.find("#result").is_displayed() and "No recommendation" in page.find("#status").text
    page.shot("invalid-site")

    Select(page.find("#f-site")).select_by_value("knee")
    page.settle()
    check_answer(page, {"site": "knee", "injectate": "corticosteroid"}, recommender)
    assert not page.all("#f-site option[data-invalid]"), "the invalid value is gone once another is chosen"

    Select(page.find("#f-tissue")).select_by_value("bursa")  # a knee is a joint
    page.settle()
    assert page.state == "invalid"
    errors = page.visible_errors()
    assert set(errors) == {"tissue", "site"} and all("contradicts site 'knee'" in m for m in errors.values())
    page.shot("invalid-contradiction")

    Select(page.find("#f-site")).select_by_value("")  # no site: region is required
    page.settle()
    assert "region" in page.visible_errors() and "required when no site is given" in page.visible_errors()["region"]


def test_a_contradiction_with_a_site_default_is_named_beside_both_fields(page: Page) -> None:
    page.open().fill({"site": "hip", "injectate": "prp", "palpable": True})  # the hip is deep: not easily palpated
    assert page.state == "invalid"
    errors = page.visible_errors()
    assert set(errors) == {"depth", "palpable"} and errors["depth"] == errors["palpable"]
    assert "contradictory case (depth=deep, palpable=true)" in errors["palpable"]


def test_invalid_flag_from_a_link_is_kept_and_named(page: Page) -> None:
    page.open("site=knee&injectate=prp&palpable=maybe&colour=red")
    assert page.state == "invalid" and page.sent["palpable"] == "maybe"
    assert "'maybe' was given" in page.visible_errors()["palpable"]
    assert "colour" in page.find("#link-note").text
    page.click(page.find("#f-palpable-false"))
    page.settle()
    assert page.state == "ready" and page.visible_errors() == {}


def test_the_link_reproduces_the_case(page: Page, server: Server, recommender: Recommender) -> None:
    case = example("31-atypical-anatomy-knee") | {"palpable": False, "available_modalities": ["ultrasound"]}
    page.open().fill(case)
    link = page.find("#case-link").get_attribute("href")
    assert page.driver.current_url == link, "the address bar holds the same link"
    page.driver.get("about:blank")
    page.driver.get(link)
    page.settle()
    check_answer(page, case, recommender)


def test_the_card_link_opens_the_same_answer(page: Page, server: Server, recommender: Recommender) -> None:
    response = server.post(SELECT, hook_request(injection([coding(SCT, "49076000")])))
    (card,) = response.json()["cards"]
    (link,) = card["links"]
    assert link["type"] == "absolute" and urlsplit(link["url"]).path == "/page"
    record = server.get(f"/api/v1/consultations/{card['uuid']}").json()
    page.driver.get(link["url"])
    page.settle()
    assert normalised(page.sent) == normalised({k: v for k, v in record["case"].items() if v is not None})
    assert page.find("#modality").get_attribute("data-modality") == record["modality"]
    check_answer(page, page.sent, recommender)


def test_citations_open_their_source(page: Page, recommender: Recommender) -> None:
    page.open("site=hip&injectate=cell_based")
    first = page.find("#steps > li .cite")
    anchor = first.get_attribute("href").split("#", 1)[1]
    first.click()
    assert page.js("return location.hash") == f"#{anchor}"
    target = page.find(f"#{anchor}")
    assert target.is_displayed()
    source, _, proposition = anchor.removeprefix("src-").partition("-")
    spec = recommender.knowledge.sources[source]
    assert spec.propositions[proposition].summary in target.text


def test_printable_questions(page: Page, recommender: Recommender) -> None:
    case = {"site": "glenohumeral", "injectate": "cell_based"}
    page.open().fill(case)
    page.js("window.print = function () { document.body.dataset.printed = '1'; };")  # headless: no print dialog
    page.click(page.find("#print-questions"))
    assert page.js("return document.body.dataset.printed") == "1"
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert page.find("#patient-questions").is_displayed()
        for hidden in ("#case-form", "#answer", "header.top"):
            assert not page.find(hidden).is_displayed(), hidden
        assert page.texts("#pq-list > li") == [q.text for q in recommender.recommend(case).questions]
        page.shot("print-questions", height=1000)
    finally:
        page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        page.js("window.dispatchEvent(new Event('afterprint'))")
    assert page.find("#case-form").is_displayed() and not page.find("#patient-questions").is_displayed()


def test_keyboard_alone_reaches_every_field_and_changes_the_answer(page: Page, recommender: Recommender) -> None:
    page.open()
    body = page.find("body")
    body.send_keys(Keys.TAB)
    assert page.js("return document.activeElement.className") == "skip"
    seen: list[str] = []
    active = page.driver.switch_to.active_element
    for _ in range(60):
        active.send_keys(Keys.TAB)
        active = page.driver.switch_to.active_element
        name = active.get_attribute("name") or active.get_attribute("id")
        if name == "site":
            active.send_keys("Hip")
        elif name == "injectate":
            active.send_keys("cort")
        elif name == "contrast_confirmation":
            active.send_keys(Keys.ARROW_RIGHT)  # from "not known" round to "yes"
        if name == "print-questions" or active.tag_name == "body":
            break
        seen.append(name or active.tag_name)
    page.settle()
    for field in Case.model_fields:
        assert any(s == field or s.startswith(f"f-{field}-") for s in seen), f"{field} was not reached by Tab: {seen}"
    case = {
        "site": "hip",
        "injectate": "corticosteroid",
        "contrast_confirmation": True,
        "available_modalities": ["ultrasound", "fluoroscopy"],
    }
    check_answer(page, case, recommender)


def test_every_control_is_labelled_and_text_has_contrast(page: Page) -> None:
    page.open("site=knee&injectate=corticosteroid&tissue=bursa")  # problems shown too
    unlabelled = page.js(
        "return Array.from(document.querySelectorAll('select, input, button')).filter(e => !(e.labels && e.labels.length) && "
        "e.tagName !== 'BUTTON').map(e => e.id)"
    )
    assert unlabelled == []
    assert page.js("return Array.from(document.querySelectorAll('fieldset')).filter(f => !f.querySelector('legend')).length") == 0
    page.open("site=knee&injectate=corticosteroid")
    # WCAG 2 contrast of every visible piece of text against the background it sits on
    low = page.js(
        """
        function rgb(s) { const m = s.match(/[\\d.]+/g).map(Number); return { c: m.slice(0, 3), a: m.length > 3 ? m[3] : 1 }; }
        function lum(c) { const v = c.map(x => { x /= 255; return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
          return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; }
        function background(e) {
          for (; e; e = e.parentElement) { const b = rgb(getComputedStyle(e).backgroundColor); if (b.a > 0.5) return b.c; }
          return [255, 255, 255];
        }
        const out = [];
        for (const e of document.querySelectorAll('body *')) {
          if (!Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim())) continue;
          if (!e.offsetParent && getComputedStyle(e).position !== 'fixed') continue;
          const fg = lum(rgb(getComputedStyle(e).color).c), bg = lum(background(e));
          const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
          if (ratio < 4.5) out.push(e.tagName + '.' + e.className + ': ' + ratio.toFixed(2) + ' ' + e.textContent.trim().slice(0, 40));
        }
        return out;
        """
    )
    assert low == []


def test_no_request_leaves_the_service(page: Page, server: Server) -> None:
    page.open("site=knee&injectate=corticosteroid")
    origins = page.js("return performance.getEntriesByType('resource').map(r => new URL(r.name).origin)")
    assert origins and set(origins) == {server.url}
    assert page.driver.get_log("browser") == []
