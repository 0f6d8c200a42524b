"""Where goroutine snapshots come from: the target's pprof endpoint or its go_goroutines gauge."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from typing import Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from skewcheck.errors import InconclusiveError
from skewcheck.leak.profile import (
    MAX_PROFILE_BYTES,
    Profile,
    decode_profile,
    parse_go_goroutines,
    parse_goroutine_profile,
)

PPROF_DEBUG = 2  # debug=2 carries states, wait minutes and `created by`; debug=1 has none


class LeakSourceError(InconclusiveError):
    """The pprof or metrics endpoint cannot be read: the leak gate cannot judge (exit 3)."""


class GoroutineSource(Protocol):
    """Anything that can take a goroutine snapshot of the target."""

    description: str

    def snapshot(self) -> Profile: ...


class PprofSource:
    def __init__(self, url: str, timeout_s: float, debug: int = PPROF_DEBUG) -> None:
        self.url = goroutine_profile_url(url, debug)
        self.timeout_s = timeout_s
        self.description = f"pprof endpoint {self.url}"

    def snapshot(self) -> Profile:
        return parse_goroutine_profile(
            decode_profile(_fetch(self.url, self.timeout_s, self.description), self.description),
            source=self.description)


class MetricsSource:
    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.description = f"metrics endpoint {url}"

    def snapshot(self) -> Profile:
        data = _fetch(self.url, self.timeout_s, self.description)
        return parse_go_goroutines(data.decode("utf-8", "replace"), source=self.description)


def goroutine_profile_url(url: str, debug: int = PPROF_DEBUG) -> str:
    """Point a pprof URL (`…/debug/pprof/` or `…/goroutine`) at the goroutine profile text."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path or path.endswith("/debug/pprof"):
        path = (path or "/debug/pprof") + "/goroutine"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "debug"]
    query.append(("debug", str(debug)))
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def _fetch(url: str, timeout_s: float, description: str) -> bytes:
    # Connection: close so our own scrape leaves no idle keep-alive goroutine behind
    request = urllib.request.Request(url, headers={"Connection": "close",
                                                   "User-Agent": "skewcheck-leak-probe"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.read(MAX_PROFILE_BYTES)
    except urllib.error.HTTPError as exc:
        raise LeakSourceError(f"{description} answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise LeakSourceError(f"{description} is unreachable: {exc.reason}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # timeouts, resets, bad HTTP
        raise LeakSourceError(f"{description} is unreachable: {exc}") from None
