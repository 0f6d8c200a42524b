"""The scenario file's `leak:` section: where to read goroutines, what to probe, how long."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from skewcheck.errors import UsageError, validation_message

DEFAULT_PROBES_PER_KIND = 20  # the seed incident's 2020 accounts, % 100
MAX_PROBES_PER_KIND = 1000  # bounded: the probe must never turn into a flood
DEFAULT_HOLD_S = 10.0  # longer than the 2–3 s timeouts a fixed server sets
MAX_HOLD_S = 600.0
DEFAULT_SETTLE_TIMEOUT_S = 15.0  # hold + settle stays within the 30 s a CI step should wait
MAX_SETTLE_TIMEOUT_S = 600.0
DEFAULT_TOLERANCE = 2  # goroutines a healthy server starts and stops on its own between snapshots
DEFAULT_FETCH_TIMEOUT_S = 5.0  # a pprof dump of a busy server takes well under a second
DEFAULT_PROBE_PATH = "/"


PROBE_KINDS = ("silent", "partial", "stalled", "handshake")
TLS_ONLY_KINDS = ("handshake",)  # a stalled handshake means nothing to a plain-HTTP server


class LeakConfig(BaseModel):
    """Leak probe settings; every value has a default; without a goroutine source it is off."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    pprof_url: str | None = Field(None, description="e.g. http://127.0.0.1:6060/debug/pprof/goroutine")
    metrics_url: str | None = Field(None, description="Prometheus text with go_goroutines "
                                                      "(totals, no stacks)")
    target: str | None = Field(None, description="HOST:PORT the probes connect to; "
                                                 "defaults to the pprof (or metrics) URL's")
    silent: int = Field(DEFAULT_PROBES_PER_KIND, ge=0, le=MAX_PROBES_PER_KIND)
    partial: int = Field(DEFAULT_PROBES_PER_KIND, ge=0, le=MAX_PROBES_PER_KIND)
    stalled: int = Field(DEFAULT_PROBES_PER_KIND, ge=0, le=MAX_PROBES_PER_KIND)
    handshake: int = Field(DEFAULT_PROBES_PER_KIND, ge=0, le=MAX_PROBES_PER_KIND,
                           description="TLS targets only: a ClientHello, then nothing")
    tls: bool | None = Field(None, description="the probe target speaks TLS; unset: it does when "
                                               "it is the https pprof (or metrics) URL's host:port")
    goroutineleak: bool = Field(True, description="read Go's goroutineleak profile when the "
                                                  "target serves it (GC-proven leaks)")
    early_verdict: bool = Field(True, description="end the hold once the server has closed every "
                                                  "probe, and the drain once a block is certain")
    probe_path: str = DEFAULT_PROBE_PATH
    hold_s: float = Field(DEFAULT_HOLD_S, gt=0, le=MAX_HOLD_S)
    settle_timeout_s: float = Field(DEFAULT_SETTLE_TIMEOUT_S, ge=0, le=MAX_SETTLE_TIMEOUT_S)
    tolerance: int = Field(DEFAULT_TOLERANCE, ge=0)
    allow_remote: bool = False
    fetch_timeout_s: float = Field(DEFAULT_FETCH_TIMEOUT_S, gt=0, le=120)

    @field_validator("pprof_url", "metrics_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url

    @field_validator("target")
    @classmethod
    def _host_port(cls, target: str | None) -> str | None:
        if target is not None:
            split_target(target)
        return target

    @field_validator("probe_path")
    @classmethod
    def _request_path(cls, path: str) -> str:
        if not path.startswith("/") or any(c.isspace() for c in path):
            raise ValueError(f"{path!r} must start with / and contain no whitespace")
        return path

    @property
    def active(self) -> bool:
        """Enabled and pointed at a goroutine source; otherwise the leak gate does not run."""
        return self.enabled and bool(self.pprof_url or self.metrics_url)

    @property
    def probe_tls(self) -> bool:
        """Whether the probes speak TLS: `tls`, else the scheme of the URL the target comes from."""
        if self.tls is not None:
            return self.tls
        return not self.target and urlsplit(self.pprof_url or self.metrics_url or "").scheme == "https"

    @property
    def probe_counts(self) -> dict[str, int]:
        """Connections of each kind the probe opens (no stalled handshakes on a plain target)."""
        return {kind: getattr(self, kind) for kind in PROBE_KINDS
                if self.probe_tls or kind not in TLS_ONLY_KINDS}

    @property
    def probe_count(self) -> int:
        return sum(self.probe_counts.values())

    @property
    def probe_target(self) -> tuple[str, int]:
        """Where the probes connect: `target`, else the host:port serving the goroutines."""
        if self.target:
            return split_target(self.target)
        parts = urlsplit(self.pprof_url or self.metrics_url or "")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return parts.hostname or "", port

    @classmethod
    def parse(cls, data: dict[str, Any] | None, where: str = "leak",
              names: dict[str, str] | None = None) -> LeakConfig:
        """Validate a `leak:` mapping; a bad value becomes one UsageError naming the field
        (as `where.field`, or by `names[field]`, e.g. the command-line flag that set it)."""
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            raise UsageError(validation_message(exc, root=where, names=names, separator="; ")) from None


def split_target(target: str) -> tuple[str, int]:
    """`127.0.0.1:8080` / `[::1]:8080` / `localhost:8080` → (host, port)."""
    host, sep, port = target.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{target!r} is not HOST:PORT")
    return host, int(port)
