"""A browser stand-in for the dashboard's tests: cookies kept as a browser keeps them, the XSRF
token picked up from each page; signing in and out as a person would."""

import re
from http.cookies import SimpleCookie
from urllib.parse import urlencode

import tornado.httpclient

from .factories import PASSWORD

XSRF = re.compile(r'name="xsrf-token" content="([^"]+)"')


class Visitor:
    """A browser stand-in: keeps the cookies the server sets, follows no redirects."""

    def __init__(self, base_url):
        self.base_url = base_url
        self.cookies = {}
        self.set_cookies = {}  # name -> the last Set-Cookie morsel, to check its flags
        self.client = tornado.httpclient.AsyncHTTPClient()
        self.xsrf = None

    async def fetch(self, path, method="GET", body=None, headers=None, form=None):
        headers = dict(headers or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if body is None and method == "POST":
            body = ""
        response = await self.client.fetch(
            self.base_url + path, method=method, body=body, headers=headers, follow_redirects=False, raise_error=False
        )
        for raw in response.headers.get_list("Set-Cookie"):
            for name, morsel in SimpleCookie(raw).items():
                self.set_cookies[name] = morsel
                if morsel["expires"] and "1970" in morsel["expires"] or morsel.value == "":
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        text = response.body.decode() if response.body else ""
        found = XSRF.search(text)
        if found:
            self.xsrf = found.group(1)
        return response, text

    async def sign_in(self, email, password=PASSWORD, next_path=None):
        await self.fetch("/app/sign-in/")
        form = {"_xsrf": self.xsrf, "email": email, "password": password}
        if next_path:
            form["next"] = next_path
        return await self.fetch("/app/sign-in/", "POST", form=form)


async def sign_out(browser):
    """Sign out from a dashboard page, as the page's form does; the server sends the browser to sign in."""
    await browser.fetch("/app/client/")
    response, _ = await browser.fetch("/app/sign-out/", "POST", form={"_xsrf": browser.xsrf})
    assert (response.code, response.headers.get("Location")) == (302, "/app/sign-in/"), _
