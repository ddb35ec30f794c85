"""The page's answer as issue 19 asks for it, in a real headless chromium: the bottom line and any
refer caution beside the headline modality, collapsible reasoning with grouped reasons, a layout
that reflows at a 390 px phone and 400 % zoom, an answer marked out of date while the next is
fetched, a retry after an outage, cautions announced, and a print that carries the case."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.service import test_page
from tests.service.test_page import ARTIFACTS, Page, example

# The page tests' fixtures (a browser per module, the page, the library's recommender, screenshots).
browser, page, recommender, shots = test_page.browser, test_page.page, test_page.recommender, test_page.shots

pytestmark = pytest.mark.usefixtures("browser")


def top(page: Page, css: str) -> float:
    return float(page.js("return arguments[0].getBoundingClientRect().top + window.scrollY", page.find(css)))


def network(page: Page, offline: bool = False, latency: int = 0) -> None:
    """Emulate the network the page's requests go over (chromium's DevTools protocol)."""
    page.driver.execute_cdp_cmd("Network.enable", {})
    conditions = {"offline": offline, "latency": latency, "downloadThroughput": -1, "uploadThroughput": -1}
    page.driver.execute_cdp_cmd("Network.emulateNetworkConditions", conditions)


def choose(page: Page, field: str, value: str) -> None:
    page.js(
        f"const s = document.getElementById('f-{field}'); s.value = '{value}'; s.dispatchEvent(new Event('change', {{bubbles: true}}));"
    )


def no_sideways_scroll(page: Page) -> bool:
    return bool(page.js("return document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1"))


@pytest.mark.parametrize("width", [1280, 390])
def test_the_bottom_line_and_the_refer_caution_stand_beside_the_modality(page: Page, recommender: Any, width: int) -> None:
    case = example("32-hip-no-ultrasound-in-clinic")
    page.driver.set_window_size(width, 1800)
    try:
        page.open().fill(case)
        expected = recommender.recommend(case)
        assert page.find("#bl-reason").text == expected.summary.reason
        refer = page.all("#bl-refer > li")
        assert [r.text.removeprefix("Refer: ") for r in refer] == list(expected.summary.cautions) and refer
        assert refer[0].is_displayed()
        assert top(page, "#bl-refer") - top(page, "#modality") < (500 if width < 600 else 300)
        assert expected.summary.figure is not None and expected.summary.figure.source.source in page.find("#bl-figure").text
        assert no_sideways_scroll(page)
        path = ARTIFACTS / f"bottom-line-{width}.png"
        page.js("window.scrollTo(0, arguments[0])", top(page, "#answer") - 10)
        page.driver.save_screenshot(str(path))  # at this width (Page.shot draws at 1280 px)
        page.shots.append(path)
    finally:
        page.driver.set_window_size(1280, 1800)


def test_reasoning_is_collapsible_and_lists_grouped_reasons_and_overrides(page: Page, recommender: Any) -> None:
    case = {"site": "hip", "injectate": "corticosteroid", "contrast_confirmation": True}
    page.open("site=hip&injectate=corticosteroid&contrast_confirmation=true")
    expected = recommender.recommend(case)
    group = next(s for s in expected.reasoning if s.reasons)
    shown = page.all(f'#steps > li[data-rule="{group.rule}"] .reasons > li')
    assert [li.get_attribute("data-rule") for li in shown] == [r.rule for r in group.reasons]
    overridden = page.find('#steps > li[data-rule="RATE-US-FIT"]')
    assert "overridden" in overridden.get_attribute("class") and overridden.get_attribute("data-overridden-by") == "RATE-US-CONTRAST"
    details = page.find("#reasoning")
    assert details.get_attribute("open") is not None
    page.click(page.find("#reasoning > summary"))
    assert details.get_attribute("open") is None and not page.find("#steps").is_displayed()
    page.click(page.find("#reasoning > summary"))
    assert page.find("#steps").is_displayed()


def test_the_named_knee_path_is_in_the_reasoning(page: Page) -> None:
    page.open("site=knee&injectate=corticosteroid&approach=anteromedial")
    assert any("anteromedial path" in t and "72%" in t for t in page.texts("#steps > li .conclusion"))


def test_reflow_at_400_percent_zoom_has_no_sideways_scroll(page: Page) -> None:
    """WCAG 1.4.10: 1280 px at 400 % zoom is a 320 CSS px viewport."""
    page.driver.set_window_size(1280, 1800)
    try:
        page.open("site=knee&injectate=cell_based&anatomy_variance=obesity")
        page.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 320, "height": 900, "deviceScaleFactor": 4, "mobile": False}
        )
        page.js("window.dispatchEvent(new Event('resize'))")
        time.sleep(0.2)
        assert no_sideways_scroll(page), page.js("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        path = ARTIFACTS / "reflow-320.png"
        page.js("window.scrollTo(0, arguments[0])", top(page, "#answer") - 10)
        page.driver.save_screenshot(str(path))
        page.shots.append(path)
    finally:
        page.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_a_slow_answer_leaves_the_previous_one_marked_out_of_date(page: Page) -> None:
    page.open("site=hip&injectate=corticosteroid")
    page.driver.execute_cdp_cmd("Network.enable", {})
    page.driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions", {"offline": False, "latency": 3000, "downloadThroughput": -1, "uploadThroughput": -1}
    )
    try:
        choose(page, "site", "knee")
        time.sleep(0.6)
        assert "stale" in page.find("#result").get_attribute("class")
        assert "Out of date" in page.find("#status").text and "Updated" not in page.find("#status").text
    finally:
        page.driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
        )
    page.settle()
    assert "stale" not in (page.find("#result").get_attribute("class") or "")
    assert page.find("#modality").get_attribute("data-modality") == "landmark"


def test_after_an_outage_the_page_retries_by_itself(page: Page) -> None:
    page.open("site=hip&injectate=corticosteroid")
    page.driver.execute_cdp_cmd("Network.enable", {})
    page.driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions", {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
    )
    try:
        choose(page, "site", "knee")
        page.settle()
        assert page.state == "offline"
    finally:
        page.driver.execute_cdp_cmd(
            "Network.emulateNetworkConditions", {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}
        )
    deadline = time.monotonic() + 15
    while page.state != "ready" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert page.state == "ready" and page.find("#modality").get_attribute("data-modality") == "landmark"


def test_the_live_region_announces_new_cautions(page: Page) -> None:
    page.open("site=hip&injectate=corticosteroid")
    page.js(
        "const s = document.getElementById('f-injectate'); s.value = 'cell_based'; s.dispatchEvent(new Event('change', {bubbles: true}));"
    )
    page.settle()
    status = page.find("#status")
    assert status.get_attribute("aria-live") == "polite" and "New caution" in status.text and "regulatory risk" in status.text


def test_the_print_carries_case_rule_base_date_and_link(page: Page, recommender: Any) -> None:
    page.open("site=knee&injectate=corticosteroid")
    page.js("window.print = function () { document.body.dataset.printed = '1'; };")
    page.click(page.find("#print-answer"))
    assert page.js("return document.body.dataset.printed") == "1"
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        foot = page.find("#print-foot")
        assert foot.is_displayed()
        kb = recommender.knowledge
        for part in ("site knee", kb.version, kb.digest, "UTC", "/page?"):
            assert part in foot.text, part
    finally:
        page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def test_a_clear_way_to_start_a_new_case(page: Page) -> None:
    page.open("site=knee&injectate=corticosteroid")
    page.click(page.find("#new-case"))
    page.settle()
    search = page.js("return location.search")
    assert page.state == "empty" and "site=" not in search and "injectate=" not in search
