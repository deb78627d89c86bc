"""Names on the Hugging Face Hub: an id pasted as a page's URL, and the id it stands for."""

from __future__ import annotations

import re

_URL = re.compile(r"(?i)[a-z][a-z0-9+.-]+://")
_HUB_PAGE = re.compile(
    r"(?i)https?://(?:www\.)?(?:huggingface\.co|hf\.co)/(?:(datasets|spaces)/)?([^/?#]+(?:/[^/?#]+)?)"
)


def is_url(value: str) -> bool:
    """Whether ``value`` is a URL (``scheme://...``), not a Hub id or a path."""
    return bool(_URL.match(value))


def url_problem(value: str, kind: str, instead: str) -> str | None:
    """None when ``value`` is no URL; else what is wrong and what to give: the Hub id of a ``kind`` page's
    URL, or ``instead``."""
    if not is_url(value):
        return None
    found = hub_id(value, kind)
    return f"'{value}' is a URL; " + (f"give the Hub id, '{found}'" if found else instead)


def hub_id(url: str, kind: str) -> str | None:
    """The Hub id of a ``kind`` ("models" or "datasets") page's URL, such as 'org/name' for
    https://huggingface.co/org/name/tree/main; None for any other URL."""
    page = _HUB_PAGE.match(url)
    if page is None or (page.group(1) or "models").lower() != kind:
        return None
    return page.group(2)
