"""Stacks that are no leak even when their count moves: small named predicates, goleak-style.

Each predicate answers for one kind of goroutine the probe itself causes or the Go runtime
keeps; `is_benign` is true when any of them is.
"""

from __future__ import annotations

from collections.abc import Callable

from skewcheck.leak.profile import Stack

StackPredicate = Callable[[Stack], bool]


def is_profile_writer(stack: Stack) -> bool:
    """The goroutine answering our own /debug/pprof request."""
    return any(f.startswith(("runtime/pprof.", "net/http/pprof.")) for f in stack.functions)


def is_background_read(stack: Stack) -> bool:
    """net/http's per-request reader: lives exactly as long as its handler, which is counted."""
    creator = stack.created_by or ""
    return (creator.startswith("net/http.(*connReader).startBackgroundRead")
            or any(f.startswith("net/http.(*connReader).backgroundRead") for f in stack.functions))


def is_signal_loop(stack: Stack) -> bool:
    """os/signal's dispatcher: started once by signal.Notify, never a per-request goroutine."""
    return any(f in ("os/signal.signal_recv", "os/signal.loop") for f in stack.functions)


def is_frameless(stack: Stack) -> bool:
    """A goroutine caught starting or exiting: only runtime frames, nothing to attribute."""
    return not stack.functions or all(f.startswith("runtime.") for f in stack.functions)


BENIGN: tuple[StackPredicate, ...] = (
    is_profile_writer, is_background_read, is_signal_loop, is_frameless,
)


def is_benign(stack: Stack) -> bool:
    return any(predicate(stack) for predicate in BENIGN)
