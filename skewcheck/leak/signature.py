"""A goroutine's stack reduced to the frames that say who is stuck, so profiles can be diffed.

Every goroutine parked on a socket ends in the same runtime/poll/net/bufio frames; they
say how it waits, not who is waiting. Dropping them (and net/http's reader and dispatch
layers) leaves `net/http.(*conn).readRequest` ← `net/http.(*conn).serve`, a handler's own
frames, and the `created by` function — the same signature in every profile and Go version.
"""

from __future__ import annotations

from dataclasses import dataclass

from skewcheck.leak.profile import Stack

# how a goroutine waits, never who it is: the scheduler, the poller, sockets, buffers, locks
_PLUMBING_PACKAGES = frozenset({
    "runtime", "net", "bufio", "bytes", "io", "syscall", "sync", "os", "net/textproto",
    "crypto/tls", "panic",
})
_PLUMBING_PACKAGE_PREFIXES = ("internal/", "vendor/")
# net/http's body readers and handler dispatch sit between the connection and the handler
_NET_HTTP_PLUMBING_PREFIXES = (
    "net/http.(*connReader).", "net/http.readRequest", "net/http.(*body).readLocked",
    "net/http.HandlerFunc.ServeHTTP", "net/http.(*ServeMux).ServeHTTP",
    "net/http.serverHandler.ServeHTTP", "net/http.(*chunkWriter).", "net/http.(*maxBytesReader).",
    "net/http.(*expectContinueReader).", "net/http.checkConnErrorWriter.",
)
# plumbing frames that do say something: an idle keep-alive wait, a TLS handshake and how far
# it got (no ClientHello yet; the server's flight sent, the client's Finished awaited)
TLS_HANDSHAKE_FUNCTIONS = frozenset({
    "crypto/tls.(*Conn).HandshakeContext", "crypto/tls.(*Conn).Handshake",
})
TLS_NO_HELLO_FUNCTIONS = frozenset({"crypto/tls.(*Conn).readClientHello"})
TLS_MIDWAY_FUNCTIONS = frozenset({
    "crypto/tls.(*serverHandshakeStateTLS13).readClientCertificate",
    "crypto/tls.(*serverHandshakeStateTLS13).readClientFinished",
    "crypto/tls.(*serverHandshakeState).doFullHandshake",
    "crypto/tls.(*serverHandshakeState).doResumeHandshake",
    "crypto/tls.(*serverHandshakeState).readFinished",
})
_TELLING_FUNCTIONS = frozenset({"bufio.(*Reader).Peek"} | TLS_HANDSHAKE_FUNCTIONS
                               | TLS_NO_HELLO_FUNCTIONS | TLS_MIDWAY_FUNCTIONS)

CONN_SERVE = "net/http.(*conn).serve"


def package_of(function: str) -> str:
    """`net/http.(*conn).serve` → `net/http`; `main.handler.func1` → `main`."""
    slash = function.rfind("/")
    dot = function.find(".", slash + 1)
    return function if dot < 0 else function[:dot]


def is_plumbing(function: str) -> bool:
    if function in _TELLING_FUNCTIONS:
        return False
    package = package_of(function)
    return (package in _PLUMBING_PACKAGES
            or package.startswith(_PLUMBING_PACKAGE_PREFIXES)
            or function.startswith(_NET_HTTP_PLUMBING_PREFIXES))


@dataclass(frozen=True, order=True)
class Signature:
    """What stays of a stack after plumbing is dropped; equal across profiles and Go versions."""

    functions: tuple[str, ...]  # innermost first
    created_by: str | None = None

    def without_creator(self) -> Signature:
        """debug=1 has no `created by`: compare on frames alone when formats differ."""
        return Signature(self.functions, None)

    def has(self, function: str) -> bool:
        return function in self.functions

    @property
    def under_conn_serve(self) -> bool:
        """The goroutine serves one server-side HTTP connection."""
        return CONN_SERVE in self.functions

    @property
    def headline(self) -> str:
        """The innermost meaningful frame (or the creator when none is left)."""
        if self.functions:
            return self.functions[0]
        return f"created by {self.created_by}" if self.created_by else "(no frames)"

    def lines(self) -> list[str]:
        out = list(self.functions)
        if self.created_by:
            out.append(f"created by {self.created_by}")
        return out


def signature_of(stack: Stack) -> Signature:
    kept: list[str] = []
    for function in stack.functions:
        # recursion depth is not identity: one frame per run of the same function
        if not is_plumbing(function) and (not kept or kept[-1] != function):
            kept.append(function)
    return Signature(tuple(kept), stack.created_by)
