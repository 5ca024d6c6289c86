"""Browser tests in real headless Chromium (Debian's /usr/bin/chromium driven by playwright)."""

from __future__ import annotations

from dms_web.testing import require_chromium

playwright = require_chromium()


async def _login(browser, web, user: str):  # noqa: ANN001, ANN202
    context = await browser.new_context(base_url=web.url)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.goto("/")
    assert page.url.endswith("/login?next=%2F")
    await page.get_by_label("User name").fill(user)
    await page.get_by_label("Password").fill(user)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(web.url + "/")
    page.errors = errors  # type: ignore[attr-defined]
    return page


async def test_login_live_value_and_breaker_operation(web, browser):
    page = await _login(browser, web, "operator")
    expect = playwright.expect
    await expect(page.locator("#live-status")).to_have_text("● live")
    cell = page.locator('tr[data-point="rtu/U"] .value')
    await expect(cell).to_have_text("20.1")
    web.rtu.set("rtu/U", 20.75)  # a field change
    await expect(cell).to_have_text("20.75", timeout=1000)  # on the page within 1 s

    breaker = page.locator('tr[data-point="rtu/CB"]')
    await expect(breaker.locator(".value")).to_have_text("closed")
    await breaker.get_by_role("button", name="Control…").click()
    dialog = page.locator("#control-dialog")
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Open").check()
    await dialog.get_by_label("Reason (audit trail)").fill("browser test")
    await dialog.get_by_role("button", name="Select").click()
    await expect(dialog.locator("#control-summary")).to_have_text("OPEN rtu/CB")
    assert web.rtu.operated == []  # selected, not operated
    await dialog.get_by_role("button", name="Confirm and operate").click()
    await expect(dialog.locator("#control-result")).to_contain_text("SUCCEEDED")
    await expect(breaker.locator(".value")).to_have_text("open", timeout=1000)
    (command,) = web.rtu.operated
    assert command.originator == "user:operator" and command.value == 1 and command.reason == "browser test"
    assert page.errors == []  # type: ignore[attr-defined]


async def test_acknowledge_alarm_in_browser(web, browser):
    from dms_alarms import manager_for
    from dms_hookspecs import Alarm, AlarmPriority

    page = await _login(browser, web, "operator")
    await page.goto("/alarms")
    expect = playwright.expect
    await expect(page.locator("#live-status")).to_have_text("● live")
    web.kernel.emit(Alarm("breaker 'rtu/CB' tripped: test", AlarmPriority.CRITICAL, source="rtu", category="protection"))
    row = page.locator("#alarm-table tbody tr").first
    await expect(row).to_contain_text("breaker 'rtu/CB' tripped", timeout=3000)
    await expect(row.locator(".prio")).to_have_text("critical")
    await expect(page.locator("#alarm-banner")).to_have_text("1 critical alarm unacknowledged")
    await row.get_by_role("button", name="Acknowledge").click()
    await expect(row.locator(".state")).to_have_text("acked-active")
    await expect(page.locator("#alarm-banner")).to_be_hidden()
    (alarm,) = manager_for(web.kernel).active()
    assert alarm.acked_by == "user:operator"


async def test_viewer_has_no_controls_and_api_says_403(web, browser):
    page = await _login(browser, web, "viewer")
    expect = playwright.expect
    await expect(page.locator('tr[data-point="rtu/CB"]')).to_be_visible()
    assert await page.locator("button[data-control]").count() == 0
    assert await page.locator("#control-dialog").count() == 0
    status = await page.evaluate("""async () => {
        const csrf = document.querySelector('meta[name="csrf-token"]').content;
        const r = await fetch('/api/v1/commands/select', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
                                                           body: JSON.stringify({point: 'rtu/CB', value: 1})});
        return r.status; }""")
    assert status == 403
    await page.goto("/alarms")
    await expect(page.locator("#alarm-table thead")).not_to_contain_text("Actions")


async def test_pages_load_without_script_errors(web, browser):
    page = await _login(browser, web, "operator")
    expect = playwright.expect
    for path, marker in (("/workorders", "#board"), ("/trends?point=rtu/U", "#chart"), ("/applications", "#vvo"), ("/reports", "#report")):
        await page.goto(path)
        await expect(page.locator(marker)).to_be_attached()
        await page.wait_for_load_state("networkidle")
    await expect(page.locator("#report tbody tr")).to_have_count(7)  # the last 7 days (no services: dashes)
    assert [e for e in page.errors if "503" not in e] == []  # type: ignore[attr-defined]
    registered = await page.evaluate("navigator.serviceWorker.getRegistration().then(r => !!r)")
    assert registered
