"""Reading running sidecars over HTTP, for `skewcheck gate --sidecar URL`.

An unreachable sidecar, an HTTP error or a document that is not a sidecar state is inconclusive
(exit 3, fail closed); a URL that is not http(s) is a usage error (exit 2).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from skewcheck.errors import InconclusiveError, UsageError
from skewcheck.sidecar.state import StateDocument, parse_state

DEFAULT_TIMEOUT_S = 10.0
MAX_STATE_BYTES = 64 << 20  # shards × routers as JSON; far above any real scenario
_ENDPOINTS = ("/state", "/verdict", "/metrics", "/healthz", "/readyz")


def state_url(url: str) -> str:
    """The /state URL of a sidecar given by its base URL (or by any of its endpoints)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--sidecar {url!r} is not an http(s) URL (e.g. http://127.0.0.1:9464)")
    path = parts.path.rstrip("/")
    for endpoint in _ENDPOINTS:
        path = path.removesuffix(endpoint)
    return f"{parts.scheme}://{parts.netloc}{path}/state"


def fetch_state(url: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> StateDocument:
    target = state_url(url)
    try:
        with urllib.request.urlopen(target, timeout=timeout_s) as response:
            body = response.read(MAX_STATE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise InconclusiveError(f"the sidecar at {url} answered HTTP {exc.code} for /state") from None
    except urllib.error.URLError as exc:
        reason = exc.reason.strerror if isinstance(exc.reason, OSError) and exc.reason.strerror else exc.reason
        raise InconclusiveError(f"cannot reach the sidecar at {url}: {reason}") from None
    except TimeoutError:
        raise InconclusiveError(f"the sidecar at {url} did not answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise InconclusiveError(f"cannot reach the sidecar at {url}: {exc.strerror or exc}") from None
    if len(body) > MAX_STATE_BYTES:
        raise InconclusiveError(f"{target} answered more than {MAX_STATE_BYTES >> 20} MiB; not a sidecar state")
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError):
        raw = None
    return parse_state(raw, target)
