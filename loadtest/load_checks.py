"""The checks of the HTTP users' answers: a REST snapshot, and the assets a page names.

Pure functions of an answer (the REST check also notes in ``RUN`` what it learnt of a router).
"""

from __future__ import annotations

import html.parser
import json
import urllib.parse
from typing import Any

import orjson
from load_run import RUN, describe


def snapshot_problem(router: str, response: Any) -> str | None:
    """What is wrong with a REST snapshot, or None."""
    status = response.status_code
    if status == 0:
        return f"no response: {describe(response.error)}"
    if status == 503 and router not in RUN.seen_frames:
        # A first read before the first poll: allowed by the contract, with Retry-After.
        return None if response.headers.get("Retry-After") else "503 without Retry-After"
    if status != 200:
        return f"HTTP {status}"
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return "body is not JSON"
    if not isinstance(body, dict) or body.get("router") != router:
        return "snapshot of the wrong router"
    if not isinstance(body.get("seq"), int) or not isinstance(body.get("state"), str):
        return "snapshot without seq and state"
    RUN.seen_frames.add(router)
    interval = body.get("interval")
    if isinstance(interval, int | float) and interval > 0:
        RUN.intervals.setdefault(router, float(interval))
    return None


class _AssetParser(html.parser.HTMLParser):
    """Collects what a browser would fetch to show the page: ``src`` of any element,
    ``href`` of ``<link>``, and every URL of an import map (``imports`` and ``scopes``)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.problems: list[str] = []
        self._importmap = False
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("src"):
            self.urls.append(str(values["src"]))
        if tag == "link" and values.get("href"):
            self.urls.append(str(values["href"]))
        if tag == "script" and (values.get("type") or "").lower() == "importmap":
            self._importmap, self._text = True, []

    def handle_data(self, data: str) -> None:
        if self._importmap:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._importmap:
            self._importmap = False
            try:
                importmap = json.loads("".join(self._text))
            except ValueError:
                self.problems.append("the import map is not JSON")
                return
            if not isinstance(importmap, dict):
                return
            maps = [importmap.get("imports") or {}]
            maps += list((importmap.get("scopes") or {}).values())
            for mapping in maps:
                if isinstance(mapping, dict):
                    self.urls.extend(str(u) for u in mapping.values())


def page_assets(page_url: str, text: str) -> tuple[list[str], list[str]]:
    """Absolute same-origin URLs of the page's assets (deduplicated), and parse problems."""
    parser = _AssetParser()
    parser.feed(text)
    parser.close()
    origin = urllib.parse.urlsplit(page_url)[:2]
    urls: dict[str, None] = {}
    for raw in parser.urls:
        url = urllib.parse.urljoin(page_url, raw.strip())
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("http", "https") and parts[:2] == origin:
            urls[urllib.parse.urldefrag(url).url] = None
    return list(urls), parser.problems
