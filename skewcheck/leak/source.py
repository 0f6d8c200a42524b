"""Where goroutine snapshots come from: the target's pprof endpoint or its go_goroutines gauge,
and Go's goroutineleak profile when the target serves it."""

from __future__ import annotations

import http.client
import ipaddress
import ssl
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
# net/http/pprof answers 404 "Unknown profile" for a profile the binary does not have
NOT_SERVED_STATUS = 404
GOROUTINE_PROFILE = "goroutine"
GOROUTINE_LEAK_PROFILE = "goroutineleak"  # GOEXPERIMENT=goroutineleakprofile (Go 1.26), Go 1.27 on


class LeakSourceError(InconclusiveError):
    """The pprof or metrics endpoint cannot be read: the leak gate cannot judge (exit 3)."""


class ProfileNotServed(LeakSourceError):
    """The endpoint answered 404: this binary has no such profile (not an error for goroutineleak)."""


class GoroutineSource(Protocol):
    """Anything that can take a goroutine snapshot of the target."""

    description: str

    def snapshot(self) -> Profile: ...


class PprofSource:
    def __init__(self, url: str, timeout_s: float, debug: int = PPROF_DEBUG,
                 profile: str = GOROUTINE_PROFILE) -> None:
        self.url = goroutine_profile_url(url, debug, profile)
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


def goroutine_profile_url(url: str, debug: int = PPROF_DEBUG,
                          profile: str = GOROUTINE_PROFILE) -> str:
    """Point a pprof URL (`…/debug/pprof/`, `…/goroutine` or `…/goroutineleak`) at the text of
    `profile`, a sibling of the goroutine profile; another path is taken as that profile's."""
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if not path or path.endswith("/debug/pprof"):
        path = (path or "/debug/pprof") + "/" + profile
    elif path.rsplit("/", 1)[-1] in (GOROUTINE_PROFILE, GOROUTINE_LEAK_PROFILE):
        path = path.rsplit("/", 1)[0] + "/" + profile
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "debug"]
    query.append(("debug", str(debug)))
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def goroutineleak_profile_url(url: str, debug: int = PPROF_DEBUG) -> str | None:
    """The goroutineleak profile next to a pprof URL's goroutine profile; None when the URL is
    not a net/http/pprof layout (`…/debug/pprof/…` or `…/goroutine`) to find it in."""
    path = urlsplit(url).path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    if path and not path.endswith("/debug/pprof") and last not in (GOROUTINE_PROFILE,
                                                                    GOROUTINE_LEAK_PROFILE):
        return None
    return goroutine_profile_url(url, debug, GOROUTINE_LEAK_PROFILE)


def _fetch(url: str, timeout_s: float, description: str) -> bytes:
    # Connection: close so our own scrape leaves no idle keep-alive goroutine behind
    request = urllib.request.Request(url, headers={"Connection": "close",
                                                   "User-Agent": "skewcheck-leak-probe"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s,
                                    context=tls_context(url)) as response:
            return response.read(MAX_PROFILE_BYTES)
    except urllib.error.HTTPError as exc:
        error = ProfileNotServed if exc.code == NOT_SERVED_STATUS else LeakSourceError
        raise error(f"{description} answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise LeakSourceError(f"{description} is unreachable: {exc.reason}") from None
    except (OSError, ValueError, http.client.HTTPException) as exc:  # timeouts, resets, bad HTTP
        raise LeakSourceError(f"{description} is unreachable: {exc}") from None


def tls_context(url: str) -> ssl.SSLContext | None:
    """An https endpoint on loopback is read without verifying its certificate: test and debug
    servers there carry self-signed ones, and nothing leaves the machine. Remote ones verify."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return None
    if not is_loopback_host(parts.hostname or ""):
        return ssl.create_default_context()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False
