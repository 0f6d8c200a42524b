"""The likely cause of a leaked stack, and the fix to make, read from its frames and state."""

from __future__ import annotations

from dataclasses import dataclass

from skewcheck.leak.profile import Stack
from skewcheck.leak.signature import (
    CONN_SERVE,
    TLS_HANDSHAKE_FUNCTIONS,
    TLS_MIDWAY_FUNCTIONS,
    TLS_NO_HELLO_FUNCTIONS,
    Signature,
)


@dataclass(frozen=True)
class Cause:
    name: str
    summary: str
    fix: str


NO_READ_HEADER_TIMEOUT = Cause(
    "no_read_header_timeout",
    "connections that never send a complete request header are held open: "
    "the server has no ReadHeaderTimeout",
    "set http.Server.ReadHeaderTimeout (a few seconds) and IdleTimeout",
)
_TLS_FIX = ("set http.Server.ReadHeaderTimeout: net/http bounds the TLS handshake by the "
            "smallest of ReadHeaderTimeout, ReadTimeout and WriteTimeout; on a bare tls.Listener, "
            "give HandshakeContext a deadline")
TLS_HANDSHAKE_NOT_STARTED = Cause(
    "tls_handshake_not_started",
    "TLS connections that never send a ClientHello are held open: nothing bounds the "
    "server's TLS handshake (no ReadHeaderTimeout, ReadTimeout or WriteTimeout)",
    _TLS_FIX,
)
TLS_HANDSHAKE_STALLED = Cause(
    "tls_handshake_stalled",
    "TLS handshakes that stop midway (a ClientHello, then silence) are held open: nothing "
    "bounds the server's TLS handshake (no ReadHeaderTimeout, ReadTimeout or WriteTimeout)",
    _TLS_FIX,
)
NO_READ_TIMEOUT = Cause(
    "no_read_timeout",
    "a request body that never arrives is being read with no deadline: "
    "the server has no ReadTimeout",
    "set http.Server.ReadTimeout and bound bodies with http.MaxBytesReader",
)
NO_IDLE_TIMEOUT = Cause(
    "no_idle_timeout",
    "idle keep-alive connections are held open: the server has no IdleTimeout",
    "set http.Server.IdleTimeout",
)
UNCLOSED_RESPONSE_BODY = Cause(
    "unclosed_response_body",
    "HTTP client connections stay parked because a response body was never closed",
    "defer resp.Body.Close() after every client call (drain it to reuse the connection)",
)
BLOCKED_CHANNEL = Cause(
    "blocked_channel",
    "goroutines are blocked on a channel or select that nobody will serve any more",
    "make the goroutine select on the request context's Done() (or buffer the channel) "
    "so it can exit",
)
BLOCKED_SYNC = Cause(
    "blocked_sync",
    "goroutines wait on a mutex, WaitGroup or Cond that nothing will release",
    "release on every path (defer mu.Unlock(), defer wg.Done()) or give the wait a way out "
    "through the request context",
)
NOT_EXITING = Cause(
    "goroutine_not_exiting",
    "goroutines started during the run did not exit",
    "find what should stop them (context cancellation, closing a channel) and wire it",
)

# wait reasons of a goroutine parked on a channel operation or a select
_CHANNEL_STATES = ("chan receive", "chan send", "select")
# wait reasons of a goroutine parked on a sync primitive (what Go's leak detector also proves)
_SYNC_STATES = ("sync.", "semacquire")


def diagnose(signature: Signature, example: Stack, states: dict[str, int]) -> Cause:
    """Pick the cause from the stack's full frames (plumbing included) and its states."""
    functions = example.functions
    if CONN_SERVE in functions:
        if not TLS_HANDSHAKE_FUNCTIONS.isdisjoint(functions):
            if not TLS_MIDWAY_FUNCTIONS.isdisjoint(functions):
                return TLS_HANDSHAKE_STALLED
            if not TLS_NO_HELLO_FUNCTIONS.isdisjoint(functions):
                return TLS_HANDSHAKE_NOT_STARTED
        if "net/http.(*conn).readRequest" in functions:
            return NO_READ_HEADER_TIMEOUT
        if "net/http.(*body).Read" in functions:
            return NO_READ_TIMEOUT
        if "bufio.(*Reader).Peek" in functions:
            return NO_IDLE_TIMEOUT
    if any(f.startswith(("net/http.(*persistConn).readLoop", "net/http.(*persistConn).writeLoop"))
           for f in functions):
        return UNCLOSED_RESPONSE_BODY
    if any(state.startswith(_CHANNEL_STATES) for state in states):
        return BLOCKED_CHANNEL
    if any(state.startswith(_SYNC_STATES) for state in states):
        return BLOCKED_SYNC
    return NOT_EXITING
