"""Replay files read a block at a time and parsed vectorised: the keys and the errors are those of
the per-line rules, for plain and gzip files, one key per line or a CSV column; the whole file is
validated before any load, in `skewcheck plan` and in a Locust run alike."""

from __future__ import annotations

import csv
import gzip
import io
import re
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import run_skewcheck

from skewcheck.errors import UsageError
from skewcheck.keys import ReplayExhausted, build_distribution, parse_keys
from skewcheck.keys import replay as replay_module

INT64_MAX = 2**63 - 1


def build(path: Path, key_type: str = "int", **fields: Any):
    return build_distribution(parse_keys({"kind": "replay", "path": str(path), **fields}), 1,
                              key_type)


def all_keys(path: Path, key_type: str = "int", **fields: Any) -> list:
    """Every key of one pass, drawn in uneven batches as a request loop draws them."""
    dist = build(path, key_type, loop=False, **fields)
    out: list = []
    try:
        while True:
            out += dist.sample(997).tolist()
    except ReplayExhausted as exc:
        served = int(re.search(r"after (\d+) keys", str(exc)).group(1))
    rest = served - len(out)  # the keys of the last, partly filled batch
    return out + build(path, key_type, loop=False, **fields).sample(served).tolist()[-rest:] \
        if rest else out


def expected_keys(data: bytes, key_type: str, column: Any = None, header: bool = False,
                  delimiter: str = ",") -> list:
    """What a line-by-line reader makes of the file: the definition the fast path must match."""
    text = data.decode("utf-8").lstrip("\ufeff")
    if column is None:
        records: list[Any] = [line.strip() for line in text.split("\n")]
    else:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True))
        index = column
        if header:
            first = next(i for i, r in enumerate(rows) if any(c.strip() for c in r))
            if isinstance(column, str):
                index = [c.strip() for c in rows[first]].index(column)
            rows = rows[first + 1:]
        records = [r[index].strip() for r in rows if r and not (len(r) == 1 and not r[0].strip())]
    if header and column is None:
        records = records[next(i for i, r in enumerate(records) if r) + 1:]
    keys = [r for r in records if r]
    return [int(k) for k in keys] if key_type == "int" else keys


def messy_int_lines(rng: np.random.Generator, n: int) -> list[str]:
    """Valid int-key lines of every shape the reader meets: widths 1–19, signs, blanks around
    the key, CRLF endings, blank lines, leading zeros, the int64 limits."""
    shapes = []
    for _ in range(n):
        kind = rng.integers(0, 10)
        width = int(rng.integers(1, 20))
        value = int(rng.integers(0, 10**min(width, 18))) if width < 19 else int(
            rng.integers(10**18, INT64_MAX, dtype=np.int64))
        if kind == 0:
            line = f"  {value}\t"
        elif kind == 1:
            line = f"-{value}"
        elif kind == 2:
            line = f"+{value}\r"
        elif kind == 3:
            line = ""
        elif kind == 4:
            line = f"{value:0{width}d}"
        elif kind == 5:
            line = str([INT64_MAX, -INT64_MAX - 1, 0, -0][int(rng.integers(0, 4))])
        elif kind == 6:
            line = "   "
        else:
            line = str(value)
        shapes.append(line)
    return shapes


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few hundred bytes: lines and quoted fields straddle many block edges."""
    monkeypatch.setattr(replay_module, "BLOCK_BYTES", 397)
    monkeypatch.setattr(replay_module, "_GZIP_READ", 61)


def test_int_lines_of_every_shape_read_as_the_per_line_rules_say(tmp_path: Path,
                                                                   small_blocks: None) -> None:
    rng = np.random.default_rng(17)
    data = ("\n".join(messy_int_lines(rng, 20_000)) + "\n").encode()
    path = tmp_path / "ids.txt"
    path.write_bytes(data)
    assert all_keys(path) == expected_keys(data, "int")


def test_the_same_keys_in_one_large_block_and_without_a_final_newline(tmp_path: Path) -> None:
    rng = np.random.default_rng(18)
    data = "\n".join(messy_int_lines(rng, 50_000)).encode() + b"\n123"
    path = tmp_path / "ids.txt"
    path.write_bytes(b"\xef\xbb\xbf" + data)  # a byte-order mark before the first key
    assert all_keys(path) == expected_keys(data, "int")


@pytest.mark.parametrize("width", [1, 7, 8, 9, 16, 17, 19])
def test_ids_of_one_width_read_whole_blocks_at_once(tmp_path: Path, width: int) -> None:
    rng = np.random.default_rng(width)
    low, high = 10 ** (width - 1) if width > 1 else 0, min(10**width, INT64_MAX)
    keys = [int(k) for k in rng.integers(low, high, size=30_000, dtype=np.int64)]
    if width == 19:
        keys[:2] = [INT64_MAX, 10**18]
    path = tmp_path / "ids.txt"
    path.write_text("".join(f"{k}\n" for k in keys))
    assert all_keys(path) == keys
    if width == 19:  # one key past int64 in a block of equal widths: named by its line
        lines = path.read_text().splitlines()
        lines[12_345] = "9999999999999999999"
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(UsageError, match=f"{path}:12346: 9999999999999999999 does not fit"):
            build(path)


def test_csv_columns_with_quotes_and_newlines_across_block_edges(tmp_path: Path,
                                                                  small_blocks: None) -> None:
    rng = np.random.default_rng(19)
    rows = ["order_id;user_id;note"]
    for i in range(3000):
        note = ['plain', '"quoted; with delimiter"', '"two\nlines"', '"x"', '"say ""hi"""'][i % 5]
        user = messy_int_lines(rng, 1)[0].strip() or "7"
        rows.append(f"{i};{user};{note}" if i % 7 else f" {i} ; {user} ;{note}")
        if i % 11 == 0:
            rows.append("")
    data = ("\r\n".join(rows) + "\r\n").encode()
    path = tmp_path / "orders.csv"
    path.write_bytes(data)
    got = all_keys(path, column="user_id", delimiter=";")
    assert got == expected_keys(data, "int", column="user_id", header=True, delimiter=";")
    notes = all_keys(path, key_type="str", column=2, header=True, delimiter=";")
    assert notes == expected_keys(data, "str", column=2, header=True, delimiter=";")
    assert "two\nlines" in notes and 'say "hi"' in notes


def test_csv_without_quotes_takes_every_column_the_csv_module_would(tmp_path: Path,
                                                                     small_blocks: None) -> None:
    rows = [f"{i},{i * 7919 % 100003},user-{i}" + (",extra" if i % 3 else "") for i in range(4000)]
    data = ("\n".join(rows) + "\n").encode()
    path = tmp_path / "plain.csv"
    path.write_bytes(data)
    for column in (0, 1):
        assert all_keys(path, column=column) == expected_keys(data, "int", column=column)
    assert all_keys(path, key_type="str", column=2) == expected_keys(data, "str", column=2)
    multibyte = tmp_path / "multibyte.csv"
    multibyte.write_bytes(data.replace(b",", "§".encode()))
    assert all_keys(multibyte, column=1, delimiter="§") == expected_keys(data, "int", column=1)


def test_str_keys_keep_their_text(tmp_path: Path, small_blocks: None) -> None:
    keys = [f"user-{i}" if i % 4 else f"  ключ-{i}\t" for i in range(3000)]
    data = ("\n".join(keys) + "\n").encode()
    path = tmp_path / "keys.txt"
    path.write_bytes(data)
    assert all_keys(path, key_type="str") == expected_keys(data, "str")


def test_gzip_files_read_as_the_plain_file(tmp_path: Path, small_blocks: None) -> None:
    rng = np.random.default_rng(20)
    data = ("\n".join(messy_int_lines(rng, 5000)) + "\n").encode()
    plain = tmp_path / "ids.txt"
    plain.write_bytes(data)
    packed = tmp_path / "ids.txt.gz"
    packed.write_bytes(gzip.compress(data))
    assert all_keys(packed) == all_keys(plain)
    # concatenated gzip members (as `cat a.gz b.gz` or log rotation makes) are one stream
    half = len(data) // 2
    cut = data.index(b"\n", half) + 1
    members = tmp_path / "members.gz"
    members.write_bytes(gzip.compress(data[:cut]) + gzip.compress(data[cut:]))
    assert all_keys(members) == all_keys(plain)
    # a loop starts the file again from its first key
    looping = build(packed)
    first = looping.sample(len(all_keys(plain)) + 3).tolist()
    assert first[-3:] == first[:3]


@pytest.mark.parametrize("damage,message", [
    (lambda z: z[:len(z) // 2], "truncated gzip file"),
    (lambda z: z[:20] + bytes(b ^ 0x55 for b in z[20:60]) + z[60:], "not a valid gzip file"),
])
def test_a_damaged_gzip_file_is_one_clear_error(tmp_path: Path, damage, message: str) -> None:
    data = "".join(f"{i}\n" for i in range(20_000)).encode()
    path = tmp_path / "ids.txt.gz"
    path.write_bytes(damage(gzip.compress(data)))
    with pytest.raises(UsageError, match=f"{path}: {message}"):
        build(path)


@pytest.mark.parametrize("bad,what", [
    ("12x4", "'12x4' is not an integer key"),
    ("99999999999999999999", "does not fit in a signed 64-bit integer"),
    ("-9223372036854775809", "does not fit in a signed 64-bit integer"),
    ("1 2", "'1 2' is not an integer key"),
    ("-", "'-' is not an integer key"),
])
def test_a_bad_line_anywhere_fails_the_build_naming_its_line(tmp_path: Path, small_blocks: None,
                                                             bad: str, what: str) -> None:
    lines = [str(i) for i in range(5000)]
    lines.insert(4321, bad)
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(UsageError) as err:
        build(path)
    assert str(err.value).startswith(f"{path}:4322: ") and what in str(err.value)
    packed = tmp_path / "ids.txt.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(UsageError, match=f"{packed}:4322: "):
        build(packed)


def test_a_bad_csv_row_far_into_the_file_fails_the_build(tmp_path: Path) -> None:
    rows = ["id,user_id"] + [f"{i},{i * 13}" for i in range(300_000)]
    rows[250_001] = "250000"  # one field: no user_id column
    path = tmp_path / "users.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(UsageError, match=f"{path}:250002: row has 1 field.s., no column 'user_id'"):
        build(path, column="user_id")


def _replay_peak(path: Path, keys: int) -> tuple[int, int]:
    """Draw `keys` keys in request-loop batches: their sum and the peak traced memory."""
    tracemalloc.start()
    try:
        dist = build(path)
        total = 0
        for _ in range(keys // 60_000):
            total += int(dist.sample(60_000).sum())
        return total, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_int_ids_replay_in_memory_bounded_by_the_block(tmp_path: Path) -> None:
    sizes = {"small": 300_000, "big": 3_000_000}
    for name, lines in sizes.items():
        with (tmp_path / name).open("w") as f:
            for lo in range(0, lines, 100_000):
                f.write("".join(f"{i * 7919 % 1_000_003}\n" for i in range(lo, lo + 100_000)))
    small_sum, small_peak = _replay_peak(tmp_path / "small", sizes["big"])  # loops ten times
    big_sum, big_peak = _replay_peak(tmp_path / "big", sizes["big"])  # one pass over 20 MB
    assert small_sum == 10 * sum(i * 7919 % 1_000_003 for i in range(300_000))
    assert big_sum == sum(i * 7919 % 1_000_003 for i in range(3_000_000))
    assert big_peak < small_peak + 2**20  # the file's size does not show in memory
    assert big_peak < 8 * 2**20  # a few blocks and their per-line arrays; the keys are 24 MB


def test_plan_stops_at_a_bad_replay_line_before_simulating(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt.gz"
    ids.write_bytes(gzip.compress(("".join(f"{i}\n" for i in range(200_000)) + "x9\n").encode()))
    cfg = tmp_path / "replay.yaml"
    cfg.write_text("keys:\n  - kind: replay\n    path: ids.txt.gz\n")
    proc = run_skewcheck("plan", str(cfg), "--requests", "5000")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{ids}:200001: 'x9' is not an integer key" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


@pytest.mark.slow
def test_a_locust_run_stops_at_a_bad_replay_line_before_any_load(tmp_path: Path) -> None:
    from locust_runs import run_locust

    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{20200000 + i}\n" for i in range(100_000)) + "2020x\n")
    cfg = tmp_path / "replay.yaml"
    cfg.write_text("keys:\n  - kind: replay\n    path: ids.txt\n")
    run = run_locust("--headless", "-u", "5", "-r", "5", "-t", "5s", "--skew-config", str(cfg),
                     timeout=60)
    assert run.returncode == 2, run.output[-3000:]
    assert f"{ids}:100001: '2020x' is not an integer key" in run.stderr
    assert "Traceback" not in run.output
    assert "started the embedded demo target" not in run.output  # nothing was started
