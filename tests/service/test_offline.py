"""Every page the service serves works on a closed network: nothing it loads or links to is on
another host (issue 25, point 2: /docs loaded Swagger UI from a CDN)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from .conftest import Server

CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)|@import\s+['"]([^'"]+)""")


class References(HTMLParser):
    """Every URL an HTML page names: src, href, action, and url() in its style."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href", "action", "srcset", "poster") and value]
        self.urls += [m[0] or m[1] for name, value in attrs if name == "style" and value for m in CSS_URL.findall(value)]

    def handle_data(self, data: str) -> None:
        self.urls += [m[0] or m[1] for m in CSS_URL.findall(data)]


def pages(server: Server) -> list[str]:
    """The HTML pages: /docs, / and every GET route of the OpenAPI document without a parameter."""
    paths = server.get("/openapi.json").json()["paths"]
    found = ["/", "/docs"] + [p for p, ops in paths.items() if "get" in ops and "{" not in p]
    return sorted(set(found))


def test_no_page_refers_to_another_host(server: Server) -> None:
    here = urlsplit(server.url).netloc
    seen: set[str] = set()
    queue = [server.url + path for path in pages(server)]
    html_pages = 0
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        response = server.get(urlsplit(url).path + (f"?{urlsplit(url).query}" if urlsplit(url).query else ""), follow_redirects=True)
        assert response.status_code == 200, f"{url}: {response.status_code}"
        kind = response.headers.get("content-type", "")
        if "html" in kind:
            html_pages += 1
            parser = References()
            parser.feed(response.text)
            named = parser.urls
        elif "css" in kind:
            named = [m[0] or m[1] for m in CSS_URL.findall(response.text)]
        else:
            continue
        for ref in named:
            if ref.startswith(("data:", "#", "mailto:")):
                continue
            target = urljoin(str(response.url), ref)
            assert urlsplit(target).netloc == here, f"{url} refers to another host: {ref}"
            queue.append(target.split("#")[0])
    assert html_pages >= 2 and any(u.endswith(".js") for u in seen) and any(u.endswith(".css") for u in seen)


def test_docs_renders_from_the_package_without_the_online_validator(server: Server) -> None:
    page = server.get("/docs")
    assert page.status_code == 200 and '"validatorUrl": null' in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f'/docs/assets/{asset}"' in page.text
        assert len(server.get(f"/docs/assets/{asset}").content) > 100_000
