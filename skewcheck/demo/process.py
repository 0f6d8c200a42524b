"""Run the demo target as a child process (`python -m skewcheck demo-target`) and never leave it behind."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time

from skewcheck.errors import EXIT_USAGE, InconclusiveError, UsageError

READY_RE = re.compile(r"^demo-target listening on (http://\S+)\s*$")


def demo_target_argv(shards: int | None = None, routing: str | None = None, key_type: str | None = None,
                     pool_size: int | None = None, service_ms: float | None = None,
                     wait_timeout_ms: float | None = None, host: str = "127.0.0.1", port: int = 0,
                     config: str | None = None, python: str = sys.executable) -> list[str]:
    """The command line; options left None come from the config (or the built-in defaults)."""
    argv = [python, "-m", "skewcheck", "demo-target", "--host", host, "--port", str(port), "--exit-with-parent"]
    for flag, value in (("--config", config), ("--shards", shards), ("--routing", routing),
                        ("--key-type", key_type), ("--pool-size", pool_size), ("--service-ms", service_ms),
                        ("--wait-timeout-ms", wait_timeout_ms)):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def start_subprocess(shards: int | None = None, routing: str | None = None, key_type: str | None = None,
                     pool_size: int | None = None, service_ms: float | None = None,
                     wait_timeout_ms: float | None = None, host: str = "127.0.0.1", port: int = 0,
                     config: str | None = None, timeout: float = 20.0,
                     env: dict[str, str] | None = None, cwd: str | None = None) -> tuple[subprocess.Popen, str]:
    """Launch the demo target and wait for its ready line; returns (process, base URL).

    On failure (exit, garbage, timeout) the child is killed and reaped before the error is raised:
    UsageError when it rejected its options (exit 2), InconclusiveError otherwise.
    """
    argv = demo_target_argv(shards, routing, key_type, pool_size, service_ms, wait_timeout_ms, host, port, config)
    errlog = tempfile.TemporaryFile()  # a file, not a pipe: stderr can never fill up and block the child
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errlog,
                                env={**os.environ, **(env or {})}, cwd=cwd)
    except OSError as exc:
        errlog.close()
        raise InconclusiveError(f"cannot start the demo target: {exc}") from None
    try:
        url = _wait_ready(proc, timeout)
    except BaseException as exc:
        stop_subprocess(proc, timeout=2.0)
        assert proc.stdout is not None
        proc.stdout.close()
        if not isinstance(exc, (TimeoutError, RuntimeError, OSError, subprocess.TimeoutExpired)):
            errlog.close()
            raise  # e.g. KeyboardInterrupt: the child is gone, let the interrupt through
        errlog.seek(0)
        detail = errlog.read().decode("utf-8", "replace").strip().splitlines()
        errlog.close()
        message = detail[-1] if detail else "no output"
        if proc.returncode == EXIT_USAGE:
            raise UsageError(f"demo target rejected its options: {message}") from None
        raise InconclusiveError(f"demo target did not become ready within {timeout:g} s "
                                f"(exit {proc.returncode}): {message}") from None
    errlog.close()  # the child keeps its own descriptor; we only needed it for the failure message
    threading.Thread(target=_drain, args=(proc,), name="demo-target-stdout", daemon=True).start()
    return proc, url


def _wait_ready(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if not sel.select(remaining):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)  # raw read: select() and a buffered readline disagree
            if not chunk:
                proc.wait(timeout=2)
                raise RuntimeError("exited")
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                match = READY_RE.match(line.decode("utf-8", "replace"))
                if match:
                    return match.group(1)
            if len(buf) > 65536:
                raise RuntimeError("no ready line")


def _drain(proc: subprocess.Popen) -> None:
    """Keep reading the child's stdout so it can never block on a full pipe."""
    assert proc.stdout is not None
    try:
        fd = proc.stdout.fileno()
        while os.read(fd, 4096):
            pass
    except (OSError, ValueError):
        pass
    finally:
        proc.stdout.close()  # closed here, at EOF, so no other thread can pull the descriptor from under us


def stop_subprocess(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM, wait, SIGKILL if it lingers; returns the exit code. Safe on an already-ended process."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except ProcessLookupError:
            proc.wait()
    return proc.returncode
