"""The dashboards in a real browser: Debian's Chromium driven by Selenium through /usr/bin/chromedriver.

Three sessions (client, admin, serviceman) walk one booking from sign-in to rating against the app
served by `python -m server serve` in a subprocess on the test database; each sees the others'
actions arrive live on its socket. Midway the server is stopped and started again: every page
reconnects, resumes from the last notification it saw, and nothing is lost or shown twice.
The run saves each role's main page to docs/screenshots/ (shown in the README).

Skipped where Chromium or chromedriver is missing, except under CI (`.ci/run` installs both).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from models import Notification, User
from models.foundation.clock import platform_today, utcnow

from .conftest import TEST_DATABASE_URL
from .factories import PASSWORD, AdminFactory, CategoryFactory, ClientFactory, ServicemanFactory

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HAVE_BROWSER = os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)
WAIT = 10  # seconds any expected change may take on a busy machine
ZONE = "Africa/Lagos"
LIVE = 3  # seconds a pushed change may take to show (the socket path itself is well under a second)

webdriver = pytest.importorskip("selenium.webdriver") if HAVE_BROWSER or os.environ.get("CI") else None
pytestmark = pytest.mark.skipif(
    not HAVE_BROWSER and not os.environ.get("CI"),
    reason="Chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`python -m server serve` on a fixed port and the test database; restartable."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "server.log"
        self.env = {
            **os.environ,
            "ENV": "development",
            "DATABASE_URL": TEST_DATABASE_URL,
            "REDIS_URL": "",
            "SECRET_KEY": "browser-test-secret-key-0123456789abcdef",
            "BCRYPT_ROUNDS": "4",
            "PAYSTACK_SECRET_KEY": "",
            "PAYSTACK_PUBLIC_KEY": "",
            "PUBLIC_BASE_URL": "",
            "EMAIL_HOST": "",
            "CORS_ALLOWED_ORIGINS": "",
            "LOG_LEVEL": "WARNING",
            "DB_POOL_SIZE": "4",
            "TIME_ZONE": ZONE,
            "EMERGENCY_BOOKING_FEE": "5000.00",
            "STANDARD_BOOKING_FEE": "2000.00",
        }
        self.process = None

    def start(self):
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server", "serve", "--port", str(self.port)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited: {self.log.read_text()[-2000:]}"
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)  # polling for the port to open: there is no event to await
        raise AssertionError(f"the server did not start: {self.log.read_text()[-2000:]}")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Browser:
    """One signed-in person in their own Chromium (own cookies), with explicit waits only."""

    def __init__(self, name, server):
        from selenium.webdriver.chrome.options import Options
        from selenium.webdriver.chrome.service import Service

        options = Options()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--window-size=1280,900",
            "--lang=en-GB",
            "--disable-extensions",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "SEVERE"})  # page script errors, read at the end
        self.name, self.server = name, server
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(30)

    def script_errors(self):
        """Uncaught exceptions in page script (failed loads while the server was down are expected)."""
        return [entry["message"] for entry in self.driver.get_log("browser") if "Uncaught" in entry["message"]]

    def quit(self):
        self.driver.quit()

    # --- waits and finders ------------------------------------------------------------------

    def until(self, condition, timeout=WAIT, message=""):
        from selenium.webdriver.support.ui import WebDriverWait

        def check(driver):
            try:
                return condition()
            except Exception as exc:  # the page is re-rendering; ask again
                from selenium.common.exceptions import (
                    ElementClickInterceptedException,
                    NoSuchElementException,
                    StaleElementReferenceException,
                )

                if isinstance(
                    exc, (NoSuchElementException, StaleElementReferenceException, ElementClickInterceptedException)
                ):
                    return False
                raise

        return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(
            check, message=f"{self.name}: {message} (at {self.driver.current_url})"
        )

    def find(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def shown(self, css, timeout=WAIT):
        return self.until(lambda: (lambda e: e if e.is_displayed() else False)(self.find(css)), timeout, f"{css} shown")

    def click(self, css, timeout=WAIT):
        def clicked():
            element = self.find(css)
            if not (element.is_displayed() and element.is_enabled()):
                return False
            element.click()
            return True

        self.until(clicked, timeout, f"{css} clicked")

    def fill(self, css, text):
        field = self.shown(css)
        field.clear()
        field.send_keys(text)

    def select(self, css, value):
        from selenium.webdriver.support.ui import Select

        Select(self.shown(css)).select_by_value(str(value))

    def set_date(self, css, value):
        # The native date picker's typing order depends on the locale; set it as a pick would.
        self.driver.execute_script(
            "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'));",
            self.shown(css),
            value,
        )

    def text(self, css):
        """An element's rendered text, read in one script call (a re-render cannot leave it stale)."""
        return self.until(
            lambda: self.driver.execute_script(
                "var e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : null;", css
            ),
            message=css,
        )

    def attrs(self, css, name):
        return self.driver.execute_script(
            "var name = arguments[1]; return Array.from(document.querySelectorAll(arguments[0]))"
            ".map(function (e) { return e.getAttribute(name); });",
            css,
            name,
        )

    def status(self, expected, timeout=WAIT):
        self.until(
            lambda: self.find("#request-status").get_attribute("data-status") == expected, timeout, f"status {expected}"
        )

    def go(self, path):
        self.driver.get(self.server.url + path)

    def live_state(self):
        return self.find("#live-status").get_attribute("data-state")

    def wait_live(self, timeout=WAIT):
        self.until(lambda: self.live_state() == "live", timeout, "socket live")

    def notification(self, kind, timeout=LIVE):
        """Wait for a notification of this type in the bell's list (pushed, never reloaded)."""
        return self.until(
            lambda: self.all(f'#notification-list li[data-type="{kind}"]'), timeout, f"notification {kind}"
        )

    def unread(self):
        return int(self.find("#unread-count").get_attribute("data-count"))

    def sign_in(self, email):
        self.go("/app/")
        self.until(lambda: "/app/sign-in/" in self.driver.current_url, message="redirected to sign-in")
        self.fill("#email", email)
        self.fill("#password", PASSWORD)
        self.click("#sign-in")
        self.shown("#bell")
        self.wait_live()

    def screenshot(self, name):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))

    def pay_in_checkout(self, button):
        """Press a Pay button of the dashboard, pay in the checkout tab it opens, come back."""
        home = self.driver.current_window_handle
        before = set(self.driver.window_handles)
        self.click(button)
        self.until(lambda: set(self.driver.window_handles) - before, message="checkout tab opened")
        checkout = (set(self.driver.window_handles) - before).pop()
        self.driver.switch_to.window(checkout)
        self.until(lambda: "/dev/paystack/checkout/" in self.driver.current_url, message="on the checkout")
        self.click("form button[type=submit]")
        self.until(lambda: "/dev/paystack/done" in self.driver.current_url, message="checkout done")
        self.driver.close()
        self.driver.switch_to.window(home)


@pytest.fixture
def server(db, tmp_path):
    app_server = AppServer(tmp_path)
    app_server.start()
    yield app_server
    app_server.stop()


@pytest.fixture
def people(server):
    category = CategoryFactory(name="Plumbing", description="Leaks, drains and water heaters.")
    CategoryFactory(name="Electrical", description="Wiring and inverters.")
    verified = {"email_verified_at": utcnow()}
    client = ClientFactory(email="ada@example.ng", first_name="Ada", last_name="Obi", **verified)
    admin = AdminFactory(email="ops@example.ng", first_name="Funmi", last_name="Adeyemi", **verified)
    emeka = ServicemanFactory(
        email="emeka@example.ng",
        first_name="Emeka",
        last_name="Okafor",
        profile__categories=[category],
        profile__bio="Licensed plumber, Lagos mainland.",
        profile__years_of_experience=9,
        **verified,
    )
    tunde = ServicemanFactory(
        email="tunde@example.ng",
        first_name="Tunde",
        last_name="Adebayo",
        profile__categories=[category],
        profile__bio="Drains and water heaters.",
        **verified,
    )
    browsers = {}
    try:
        for name in ("client", "admin", "serviceman"):
            browsers[name] = Browser(name, server)
        yield {
            "category": category,
            "client_user": client,
            "admin_user": admin,
            "emeka": emeka,
            "tunde": tunde,
            **browsers,
        }
    finally:
        for browser in browsers.values():
            browser.quit()


def test_three_roles_walk_a_booking_live_through_a_server_restart(server, people):
    client, admin, serviceman = people["client"], people["admin"], people["serviceman"]
    emeka, tunde = people["emeka"], people["tunde"]

    # Given: all three signed in, each on their main page with a live socket
    client.sign_in("ada@example.ng")
    admin.sign_in("ops@example.ng")
    serviceman.sign_in("emeka@example.ng")
    assert client.driver.current_url.endswith("/app/client/")
    assert admin.driver.current_url.endswith("/app/admin/")
    assert serviceman.driver.current_url.endswith("/app/serviceman/")
    admin.shown("#queue-table tr.empty")

    # The client browses, picks Emeka and a date: the quote shows the emergency flag and fee first
    client.click("#book-link")
    client.click(f'#categories [data-category-id="{people["category"].id}"]')
    client.click(f'#servicemen [data-serviceman-id="{emeka.id}"]')
    assert "9 yrs" in client.text(f'#servicemen [data-serviceman-id="{emeka.id}"]')
    today = platform_today(ZoneInfo(ZONE))
    client.set_date("#booking-date", (today + timedelta(days=1)).isoformat())
    client.until(lambda: client.find("#quote").get_attribute("data-state") == "emergency", message="emergency quote")
    assert client.text("#quote-fee") == "₦5,000.00"
    client.set_date("#booking-date", (today + timedelta(days=7)).isoformat())
    client.until(lambda: client.find("#quote").get_attribute("data-state") == "standard", message="standard quote")
    assert client.text("#quote-fee") == "₦2,000.00"
    client.fill("#address", "12 Allen Avenue, Ikeja")
    client.fill("#description", "Kitchen sink leaking under the cabinet")
    client.click("#confirm-booking")
    client.until(lambda: re.search(r"/app/client/requests/(\d+)/$", client.driver.current_url), message="booked")
    request_id = int(re.search(r"/requests/(\d+)/$", client.driver.current_url).group(1))
    client.status("PENDING_PAYMENT")

    # When the client pays the booking fee in the checkout tab
    client.pay_in_checkout("#pay-booking-fee")
    paid = time.monotonic()

    # Then the admin's queue shows it live, and the client's page moves on by itself
    admin.notification("payment_received")
    latencies = [time.monotonic() - paid]
    admin.until(lambda: admin.all(f'#queue-table tr[data-id="{request_id}"]'), LIVE, "queued live")
    admin.until(lambda: admin.unread() >= 1, LIVE, "the bell counts it")
    client.notification("payment_receipt")
    client.status("PENDING_ADMIN_ASSIGNMENT", LIVE)
    admin.screenshot("admin")

    # The admin assigns Emeka (primary) and Tunde (backup), seeing availability and load
    admin.click(f'#queue-table tr[data-id="{request_id}"] a.button')
    admin.status("PENDING_ADMIN_ASSIGNMENT")
    assert "available" in admin.text(f'#assign-form-primary_serviceman_id option[value="{emeka.id}"]')
    admin.select("#assign-form-primary_serviceman_id", emeka.id)
    admin.select("#assign-form-backup_serviceman_id", tunde.id)
    admin.click("#assign-form-submit")
    admin.status("ASSIGNED")
    serviceman.notification("serviceman_assigned")
    serviceman.until(lambda: serviceman.all(f'#jobs-table tr[data-id="{request_id}"]'), LIVE, "job listed live")

    # The server restarts midway: every page's socket drops, reconnects and resumes
    server.stop()
    for browser in (client, admin, serviceman):
        browser.until(lambda b=browser: b.live_state() != "live", message="saw the drop")
    server.start()
    for browser in (client, admin, serviceman):
        browser.wait_live(timeout=20)

    # The serviceman inspects and estimates; the admin sees it arrive on the reconnected socket
    admin_seen = set(admin.attrs("#notification-list li[data-id]", "data-id"))
    serviceman.click(f'#jobs-table tr[data-id="{request_id}"] a')
    serviceman.status("ASSIGNED")
    serviceman.fill("#estimate-form-amount", "20000")
    serviceman.fill("#estimate-form-notes", "New trap and seals")
    serviceman.click("#estimate-form-submit")
    serviceman.status("SERVICEMAN_INSPECTED")
    admin.notification("estimate_submitted")
    admin.status("SERVICEMAN_INSPECTED", LIVE)

    # The admin marks up 10%; the client sees the final cost live and counter-offers
    admin.fill("#markup-form-markup_percentage", "10")
    admin.click("#markup-form-submit")
    admin.status("AWAITING_CLIENT_APPROVAL")
    client.notification("final_cost_set")
    client.status("AWAITING_CLIENT_APPROVAL", LIVE)
    assert client.text("#final-cost") == "₦22,000.00"
    client.screenshot("client-booking")
    client.fill("#counter-offer-proposed_amount", "21000")
    client.fill("#counter-offer-message", "Can you do 21k?")
    client.click("#counter-offer-submit")
    client.status("NEGOTIATING")

    # The admin accepts the offer live; the client is asked to pay the agreed amount
    admin.notification("negotiation_message")
    admin.status("NEGOTIATING", LIVE)
    admin.click('#negotiations li[data-status="PENDING"] button[id^="accept-"]')
    admin.status("AWAITING_PAYMENT")
    client.status("AWAITING_PAYMENT", LIVE)
    assert client.text("#final-cost-fact") == "₦21,000.00"
    client.pay_in_checkout("#pay-final")

    # Paid: the admin starts the work, the serviceman completes it, the admin confirms
    admin.notification("payment_confirmed")
    admin.status("PAYMENT_CONFIRMED", LIVE)
    clicked = time.monotonic()
    admin.click("#start-work")
    serviceman.notification("work_started")
    latencies.append(time.monotonic() - clicked)
    admin.status("IN_PROGRESS")
    serviceman.status("IN_PROGRESS", LIVE)
    serviceman.click("#complete-job")
    serviceman.status("COMPLETED_BY_SERVICEMAN")
    admin.notification("job_completed")
    admin.status("COMPLETED_BY_SERVICEMAN", LIVE)
    clicked = time.monotonic()
    admin.click("#confirm-completion")
    client.notification("job_confirmed")
    latencies.append(time.monotonic() - clicked)
    admin.status("COMPLETED")

    # The client sees the confirmation live and rates; the serviceman sees the rating arrive
    client.status("COMPLETED", LIVE)
    client.select("#rating-form-rating", 5)
    client.fill("#rating-form-review", "Quick and tidy")
    client.click("#rating-form-submit")
    client.shown("#rated")
    serviceman.notification("rating_received")

    # The bell: mark one read, then all; the count follows (pushed back by the server)
    unread = serviceman.unread()
    assert unread >= 4
    serviceman.click("#bell")
    serviceman.click('#notification-list li[data-type="rating_received"] .mark-read')
    serviceman.until(lambda: serviceman.unread() == unread - 1, LIVE, "one marked read")
    assert serviceman.all('#notification-list li.read[data-type="rating_received"]')
    serviceman.click("#mark-all-read")
    serviceman.until(lambda: serviceman.unread() == 0, LIVE, "all marked read")
    assert not serviceman.all("#notification-list li.unread")
    assert not Notification.select().where(Notification.user == emeka.id, Notification.is_read == False).exists()

    # Nothing was lost or shown twice across the restart: each list matches the database
    for browser, user in ((admin, people["admin_user"]), (client, people["client_user"]), (serviceman, emeka)):
        browser.go("/app/notifications/")
        browser.until(lambda b=browser: b.all("#notification-page-list li[data-id]"), message="notification page")
        shown = browser.attrs("#notification-page-list li[data-id]", "data-id")
        stored = [
            str(n.id)
            for n in Notification.select().where(Notification.user == user.id).order_by(Notification.id.desc())
        ]
        assert shown == stored, browser.name
    assert admin_seen < {str(n.id) for n in Notification.select().where(Notification.user == people["admin_user"].id)}

    # The main pages, for the README
    client.go("/app/client/")
    client.shown(f'#requests-table tr[data-id="{request_id}"]')
    client.screenshot("client")
    serviceman.go("/app/serviceman/")
    serviceman.until(lambda: serviceman.text("#stat-jobs") == "1", message="stats updated")
    serviceman.screenshot("serviceman")
    assert User.get_by_id(emeka.id).serviceman_profiles[0].rating_count == 1

    # The admin's analytics draw their charts from the finished booking
    admin.go("/app/admin/analytics/")
    admin.until(
        lambda: admin.all("#revenue-chart svg rect.bar") and admin.all("#status-chart svg rect.bar"),
        message="charts drawn",
    )
    assert "Emeka Okafor" in admin.text("#top-servicemen")
    admin.screenshot("admin-analytics")

    # From one person's action to another's screen (click or checkout included): within a second
    # on a quiet machine; the bound leaves room for a loaded CI host.
    print(f"push latencies (s): {', '.join(f'{x:.2f}' for x in latencies)}")
    assert max(latencies) < LIVE
    for browser in (client, admin, serviceman):
        assert browser.script_errors() == [], browser.name
