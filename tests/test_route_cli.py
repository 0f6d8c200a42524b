"""`skewcheck route` as users run it: a separate process, keys on the command line or stdin."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from conftest import REPO, run_skewcheck

from skewcheck.routing import make_router


def shards_of(result) -> list[int]:
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return [int(line) for line in result.stdout.splitlines()]


def assert_usage_error(result, *fragments: str) -> None:
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_keys_on_the_command_line():
    result = run_skewcheck("route", "--router", "mod", "--shards", "16", "17", "-1", "32")
    assert shards_of(result) == [1, 15, 0]


def test_public_vectors_through_the_cli():
    assert shards_of(run_skewcheck("route", "--router", "hash-mod", "--shards", "4",
                                   "--key-type", "str", "a")) == [1]
    assert shards_of(run_skewcheck("route", "--router", "kafka", "--shards", "1000",
                                   "--key-type", "str", "", "a")) == [681, 524]
    assert shards_of(run_skewcheck("route", "--router", "redis", "--shards", "16384", "--key-type",
                                   "str", "123456789", "somekey", "foo{hash_tag}")) == [
        0x31C3, 11058, 2515]
    assert shards_of(run_skewcheck("route", "--router", "jump", "--shards", "1024", "256")) == [520]


def test_key_type_defaults_to_int():
    assert shards_of(run_skewcheck("route", "--router", "murmur3", "--shards", "100", "-5")) == [
        make_router("murmur3", 100, "int").shard(-5)]


def test_stdin_keys_in_order():
    result = run_skewcheck("route", "--router", "jump", "--shards", "100", "-",
                           input="\n".join(str(k) for k in range(10)) + "\n")
    assert shards_of(result) == [0, 55, 62, 8, 45, 59, 86, 97, 82, 59]


def test_stdin_between_command_line_keys():
    result = run_skewcheck("route", "--router", "mod", "--shards", "10", "1", "-", "3",
                           input="20\n21")
    assert shards_of(result) == [1, 0, 1, 3]


def test_stdin_str_keys_keep_spaces_braces_and_empty_lines():
    keys = ["a", "", " padded ", "foo{hash_tag}", "é😀", "tab\there"]
    result = run_skewcheck("route", "--router", "redis", "--shards", "16384", "--key-type", "str",
                           "-", input="\r\n".join(keys) + "\r\n")
    router = make_router("redis", 16384, "str")
    assert shards_of(result) == [router.shard(k) for k in keys]


def test_large_stdin_is_streamed_and_matches_per_key():
    rng = random.Random(5)
    keys = [f"user-{rng.randrange(10**12)}" for _ in range(150_000)]  # more than one read block
    result = run_skewcheck("route", "--router", "murmur3", "--shards", "97", "--key-type", "str",
                           "-", input="\n".join(keys) + "\n")
    router = make_router("murmur3", 97, "str")
    assert shards_of(result) == [router.shard(k) for k in keys]


def test_large_int_stdin_matches_per_key():
    rng = random.Random(6)
    keys = [rng.randrange(-(2**63), 2**63) for _ in range(100_000)]
    result = run_skewcheck("route", "--router", "kafka", "--shards", "12", "-",
                           input="\n".join(map(str, keys)) + "\n")
    router = make_router("kafka", 12, "int")
    assert shards_of(result) == [router.shard(k) for k in keys]


def test_empty_stdin_prints_nothing():
    result = run_skewcheck("route", "--router", "mod", "--shards", "3", "-", input="")
    assert shards_of(result) == []


@pytest.mark.parametrize("args,fragments", [
    (["--router", "sha1", "--shards", "4", "1"], ["unknown router 'sha1'", "murmur3", "redis"]),
    (["--router", "mod", "--shards", "4", "12x"], ["'12x' is not an integer"]),
    (["--router", "mod", "--shards", "4", "9223372036854775808"], ["signed 64-bit"]),
    (["--router", "mod", "--shards", "0", "1"], ["shards"]),
    (["--router", "mod", "--shards", "-3", "1"], ["shards"]),
    (["--router", "mod", "--shards", "many", "1"], ["--shards"]),
    (["--router", "mod", "--shards", "4", "--key-type", "str", "a"], ["router mod needs int keys"]),
    (["--router", "mod", "--shards", "4", "--key-type", "float", "1"], ["key type"]),
    (["--router", "mod", "--shards", "4"], ["KEY"]),
])
def test_bad_input_is_one_line_and_exit_2(args, fragments):
    assert_usage_error(run_skewcheck("route", *args), *fragments)


def test_bad_stdin_line_names_the_line():
    result = run_skewcheck("route", "--router", "mod", "--shards", "4", "-", input="1\n2\nthree\n")
    assert_usage_error(result, "stdin line 3", "'three'")


def test_stdin_must_be_utf8():
    # run_skewcheck sends text; invalid UTF-8 needs raw bytes, so start the same command by hand
    result = subprocess.run(
        [sys.executable, "-m", "skewcheck", "route", "--router", "murmur3", "--shards", "4",
         "--key-type", "str", "-"],
        input=b"ok\n\xff\n", capture_output=True, timeout=120, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.decode().count("\n") == 1 and b"UTF-8" in result.stderr
    assert b"Traceback" not in result.stderr


def test_command_line_key_without_utf8_form():
    # an argument that is not UTF-8 reaches Python as lone surrogates, which no router can hash
    result = subprocess.run(
        [sys.executable, "-m", "skewcheck", "route", "--router", "murmur3", "--shards", "4",
         "--key-type", "str", b"a\xffb"],
        capture_output=True, timeout=120, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.decode().count("\n") == 1 and b"surrogate" in result.stderr
