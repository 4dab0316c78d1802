"""Who is a bot, and what browser, OS and device a user agent names.

Both questions are answered by maintained libraries rather than our own regexes,
because crawler and device lists go stale within months:

- ``crawlerdetect`` (a port of the PHP CrawlerDetect list, released regularly) says
  whether a user agent is a crawler, a headless browser or an HTTP library. It is
  one compiled regex, a few microseconds once warm, so it runs on the request path
  and bots never get a cookie.
- ``ua-parser`` with ``ua-parser-builtins`` (uap-core's rules, released monthly)
  names the browser, OS and device. It costs milliseconds, so it runs only in the
  background writer, once per new visit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

#: Longest user agent looked at; real ones are < 512 characters, longer ones are junk.
MAX_USER_AGENT = 1024
#: Device families ua-parser reports for tablets that the family name alone does not reveal.
_TABLET_WORDS = ("ipad", "tablet", "kindle", "silk", "playbook", "nexus 7", "nexus 9", "nexus 10")


@dataclass(frozen=True)
class Client:
    browser: str | None
    os: str | None
    device_type: str  # "desktop", "mobile" or "tablet"


@functools.cache
def _detector():  # noqa: ANN202 - crawlerdetect ships no type hints
    from crawlerdetect import CrawlerDetect

    return CrawlerDetect()


def is_bot(user_agent: str | None) -> bool:
    """A crawler, headless browser, monitoring probe or HTTP library — or no user agent."""
    if not user_agent or not user_agent.strip():
        return True
    return bool(_detector().isCrawler(user_agent[:MAX_USER_AGENT]))


@functools.lru_cache(maxsize=4096)
def parse(user_agent: str | None) -> Client:
    """Browser, OS and device type of a user agent (None where unknown)."""
    if not user_agent:
        return Client(None, None, "desktop")
    from ua_parser import parse as uap_parse

    result = uap_parse(user_agent[:MAX_USER_AGENT])
    browser = result.user_agent.family if result.user_agent else None
    os = result.os.family if result.os else None
    device = result.device
    return Client(
        browser=None if browser in (None, "Other") else browser[:50],
        os=None if os in (None, "Other") else os[:50],
        device_type=_device_type(user_agent, os, device),
    )


def _device_type(user_agent: str, os: str | None, device: object) -> str:
    ua = user_agent.lower()
    family = (getattr(device, "family", "") or "").lower()
    brand = (getattr(device, "brand", "") or "").lower()
    if any(word in family or word in brand or word in ua for word in _TABLET_WORDS):
        return "tablet"
    # Android tablets omit "Mobile" from the user agent (Google's own guidance).
    if os == "Android" and "mobile" not in ua:
        return "tablet"
    if "mobi" in ua or os in ("iOS", "Android", "Windows Phone", "BlackBerry OS"):
        return "mobile"
    return "desktop"
