"""Key distributions: reproducibility, statistics, replay streaming, type rules, validation."""

from __future__ import annotations

import math
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from skewcheck.errors import EXIT_USAGE, UsageError
from skewcheck.keys import (
    Distribution,
    KeySpec,
    KeySupply,
    ReplayExhausted,
    StridedSpec,
    build_distribution,
    parse_keys,
)
from skewcheck.keys.replay import BLOCK_BYTES

DATA = Path(__file__).parent / "data" / "keys"
TWITTER_EPOCH_MS = 1288834974657


def build(data: Any, seed: int = 1, key_type: str = "int") -> Distribution:
    return build_distribution(parse_keys(data), seed, key_type)


def draw(dist: Distribution, n: int) -> list[int | str]:
    return dist.sample(n).tolist()


def assert_share(hits: int, n: int, p: float, sigmas: float = 3.0) -> None:
    """``hits`` of ``n`` Bernoulli(p) trials lies within ``sigmas`` standard deviations."""
    sd = math.sqrt(n * p * (1 - p))
    assert abs(hits - n * p) <= sigmas * sd + 1e-9, f"{hits}/{n} vs p={p} (±{sigmas}σ)"


def assert_same_distribution(a: list, b: list, bucket: Callable[[Any], Any] = lambda k: k) -> None:
    """Two samples agree bucket by bucket within 4.5σ of a two-sample proportion test."""
    ca, cb = Counter(map(bucket, a)), Counter(map(bucket, b))
    na, nb = len(a), len(b)
    for key in ca.keys() | cb.keys():
        p = (ca[key] + cb[key]) / (na + nb)
        sd = math.sqrt(p * (1 - p) * (1 / na + 1 / nb))
        diff = abs(ca[key] / na - cb[key] / nb)
        assert diff <= 4.5 * sd + 1e-12, f"bucket {key!r}: {ca[key]}/{na} vs {cb[key]}/{nb}"


def harmonic(n: int, s: float) -> float:
    return float(np.sum(np.arange(1, n + 1, dtype=np.float64) ** -s))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


SPECS: dict[str, Any] = {
    "uniform": {"kind": "uniform", "low": 1, "high": 1000},
    "zipf": {"kind": "zipf", "n": 5000, "exponent": 1.1},
    "hot": {"kind": "hot", "keys": [7, 8], "share": 0.4, "weights": [3, 1],
            "base": {"kind": "zipf", "n": 100, "exponent": 0.9, "start": 1000}},
    "strided": {"kind": "strided", "start": 20200000, "step": 100, "count": 127},
    "strided-cycle": {"kind": "strided", "start": 5, "step": 2, "count": 9, "order": "cycle"},
    "prefixed": {"kind": "prefixed", "prefix": "user-", "inner": {"kind": "uniform", "high": 50}},
    "snowflake": {"kind": "snowflake", "rate": 2500, "workers": 3},
    "mixture": [
        {"kind": "strided", "weight": 1, "start": 20200000, "step": 100, "count": 127},
        {"kind": "zipf", "weight": 0.5, "n": 100000, "exponent": 1.1},
        {"kind": "mixture", "weight": 0.5, "components": [
            {"kind": "uniform", "low": -5, "high": 5},
            {"kind": "hot", "keys": [42], "share": 0.5},
        ]},
    ],
}
SEEDED = ["uniform", "zipf", "hot", "strided", "prefixed", "mixture"]


# --- reproducibility and types ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SPECS))
def test_same_seed_gives_same_sequence_for_next_and_for_sample(name: str) -> None:
    key_type = "str" if name == "prefixed" else "int"
    a, b = build(SPECS[name], 7, key_type), build(SPECS[name], 7, key_type)
    assert draw(a, 500) == draw(b, 500)
    assert a.sample(1000).tolist() == b.sample(1000).tolist()
    assert a.sample(10).tolist() == b.sample(10).tolist()  # and they keep agreeing


@pytest.mark.parametrize("name", SEEDED)
def test_another_seed_gives_another_sequence(name: str) -> None:
    key_type = "str" if name == "prefixed" else "int"
    a, b = build(SPECS[name], 7, key_type), build(SPECS[name], 8, key_type)
    assert draw(a, 200) != draw(b, 200)
    assert a.sample(200).tolist() != b.sample(200).tolist()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_value_types_of_next_and_sample(name: str) -> None:
    dist = build(SPECS[name], 3, "str" if name == "prefixed" else "int")
    assert isinstance(dist, Distribution)
    if name == "prefixed":
        assert dist.value_type == "str"
        assert all(type(k) is str for k in draw(dist, 50))
        arr = dist.sample(50)
        assert arr.dtype == object and all(type(k) is str for k in arr)
    else:
        assert dist.value_type == "int"
        assert all(type(k) is int for k in draw(dist, 50))
        assert dist.sample(50).dtype == np.int64
    assert len(dist.sample(0)) == 0


# --- statistics per kind -----------------------------------------------------------


def test_uniform_is_inclusive_at_both_ends() -> None:
    dist = build({"kind": "uniform", "low": -1, "high": 1})
    assert set(draw(dist, 300)) == {-1, 0, 1}
    assert set(dist.sample(300).tolist()) == {-1, 0, 1}


@pytest.mark.parametrize("exponent", [0.8, 1.2])
def test_zipf_rank0_frequency_matches_harmonic_number(exponent: float) -> None:
    n = 1000
    p0 = 1 / harmonic(n, exponent)
    dist = build({"kind": "zipf", "n": n, "exponent": exponent, "start": 1})
    sample = dist.sample(200_000)
    assert sample.min() >= 1 and sample.max() <= n
    assert_share(int((sample == 1).sum()), len(sample), p0, sigmas=4)
    keys = draw(dist, 40_000)
    assert_share(keys.count(1), len(keys), p0, sigmas=4)
    # rank 1 follows the same law: P(rank 1) / P(rank 0) = 2^-s
    assert_share(int((sample == 2).sum()), len(sample), p0 * 2**-exponent, sigmas=4)


def test_zipf_accepts_exponents_at_or_below_one() -> None:
    for exponent in (0.3, 1.0):
        keys = build({"kind": "zipf", "n": 10, "exponent": exponent, "start": 0}).sample(5000)
        assert set(keys.tolist()) == set(range(10))


def test_hot_keys_carry_their_share() -> None:
    spec = {"kind": "hot", "keys": [0, -1], "share": 0.3, "weights": [2, 1],
            "base": {"kind": "uniform", "low": 1, "high": 10**6}}
    dist = build(spec)
    sample = dist.sample(100_000).tolist()
    counts = Counter(sample)
    assert_share(counts[0] + counts[-1], len(sample), 0.3)
    assert_share(counts[0], len(sample), 0.2)
    keys = draw(dist, 30_000)
    assert_share(sum(1 for k in keys if k <= 0), len(keys), 0.3)


def test_hot_string_keys_with_equal_weights() -> None:
    dist = build({"kind": "hot", "keys": ["celebrity", "bot"], "share": 0.5}, key_type="str")
    keys = draw(dist, 20_000)
    assert_share(keys.count("celebrity"), len(keys), 0.25)
    assert all(k.isdigit() for k in keys if k not in ("celebrity", "bot"))


def test_strided_test_accounts_all_land_on_one_residue() -> None:
    dist = build(SPECS["strided"])
    for keys in (draw(dist, 20_000), dist.sample(20_000).tolist()):
        assert len(set(keys)) == 127
        assert all(k % 100 == 20200000 % 100 for k in keys)
        assert set(keys) == {20200000 + 100 * j for j in range(127)}


def test_strided_cycle_is_round_robin_across_calls() -> None:
    dist = build(SPECS["strided-cycle"])
    expected = [5 + 2 * i for i in range(9)]
    assert draw(dist, 20) == (expected * 3)[:20]
    again = build(SPECS["strided-cycle"])
    assert again.sample(4).tolist() + again.sample(16).tolist() == (expected * 3)[:20]


@given(start=st.integers(-10**12, 10**12), step=st.integers(-10**6, 10**6).filter(bool),
       count=st.integers(1, 300), seed=st.integers(0, 2**32))
@settings(max_examples=60, deadline=None)
def test_strided_keys_stay_on_their_progression(start: int, step: int, count: int,
                                                seed: int) -> None:
    spec = StridedSpec(start=start, step=step, count=count)
    allowed = {start + step * i for i in range(count)}
    dist = build_distribution(spec, seed, "int")
    assert set(draw(dist, 50)) <= allowed
    assert set(dist.sample(50).tolist()) <= allowed


def test_prefixed_keys_wrap_their_inner_distribution() -> None:
    dist = build(SPECS["prefixed"], key_type="str")
    inner = build(SPECS["prefixed"]["inner"])  # same seed: the prefix adds no randomness
    assert draw(dist, 100) == [f"user-{k}" for k in draw(inner, 100)]
    assert dist.sample(100).tolist() == [f"user-{k}" for k in inner.sample(100).tolist()]


def decode_snowflake(key: int) -> tuple[int, int, int]:
    return (key >> 22) + TWITTER_EPOCH_MS, (key >> 12) & 0x3FF, key & 0xFFF


def test_snowflake_at_low_rate_defeats_mod_100() -> None:
    dist = build({"kind": "snowflake", "rate": 50, "workers": 8})
    keys = dist.sample(20_000).tolist()
    assert len(set(keys)) == len(keys)
    ms, workers, seqs = zip(*map(decode_snowflake, keys))
    # two IDs of one worker in one millisecond are rare at 50/s: the sequence is almost always 0,
    # so the IDs are multiples of 4096 and `id % 100` only reaches the 25 residues ≡ 0 mod 4
    assert sum(s == 0 for s in seqs) >= 0.99 * len(keys)
    assert sum(k % 100 % 4 == 0 for k in keys) >= 0.99 * len(keys)
    assert len({k % 100 for k in keys if k % 4096 == 0}) == 25  # Poisson arrivals reach all of them
    assert set(workers) == set(range(8))
    assert ms[0] >= 1583020800000 and list(ms) == sorted(ms)
    span_s = (ms[-1] - ms[0]) / 1000
    assert 0.95 * len(keys) / 50 < span_s < 1.05 * len(keys) / 50  # 50 IDs a second on average


def test_snowflake_at_high_rate_uses_seq() -> None:
    dist = build({"kind": "snowflake", "rate": 200_000, "workers": 2, "start_ms": 1700000000000})
    keys = dist.sample(10_000).tolist()
    assert len(set(keys)) == len(keys)
    seqs = [decode_snowflake(k)[2] for k in keys]
    assert 80 < max(seqs) < 200  # about 100 IDs per ms per worker
    assert any(k % 4096 for k in keys)
    assert decode_snowflake(keys[0])[0] == 1700000000000


def test_snowflake_ids_do_not_depend_on_how_they_are_batched() -> None:
    spec = {"kind": "snowflake", "rate": 3333.3, "workers": 3}
    a, b = build(spec), build(spec)
    batches = np.concatenate([b.sample(n) for n in (1, 7, 500, 1, 2491)]).tolist()
    assert draw(a, 3000) == batches
    assert len(set(batches)) == len(batches)


def test_mixture_weights_hold() -> None:
    spec = [
        {"kind": "strided", "weight": 1, "start": 10**9, "step": 1, "count": 10},
        {"kind": "uniform", "weight": 0.5, "low": 1, "high": 100},
        {"kind": "mixture", "weight": 2.5, "components": [
            {"kind": "uniform", "low": -100, "high": -1},
            {"kind": "hot", "weight": 0, "keys": [0], "share": 1.0},  # weight 0: never chosen
        ]},
    ]
    dist = build(spec)
    for keys in (dist.sample(100_000).tolist(), draw(dist, 30_000)):
        assert_share(sum(1 for k in keys if k >= 10**9), len(keys), 1 / 4)
        assert_share(sum(1 for k in keys if 1 <= k <= 100), len(keys), 0.5 / 4)
        assert_share(sum(1 for k in keys if k < 0), len(keys), 2.5 / 4)
        assert 0 not in keys


def test_a_one_element_list_is_that_distribution() -> None:
    spec = {"kind": "zipf", "n": 100, "exponent": 1.0}
    assert draw(build([spec]), 100) == draw(build(spec), 100)


def test_drawing_keys_does_not_grow_memory() -> None:
    dist = build(SPECS["mixture"] + [{"kind": "snowflake", "rate": 10}], key_type="str")
    draw(dist, 1000)
    supply = KeySupply(dist)
    tracemalloc.start()
    try:
        for _ in range(100_000):
            supply.next()
        for _ in range(20):
            dist.sample(5000)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert current < 64 * 1024
    assert peak < 2 * 1024 * 1024  # one sample batch of 5000 strs, not 200k keys


# --- key_type rules ---------------------------------------------------------------


def test_int_distributions_yield_decimal_text_for_str_routing() -> None:
    ints, text = build(SPECS["mixture"], 5, "int"), build(SPECS["mixture"], 5, "str")
    assert text.value_type == "str"
    assert draw(text, 300) == [str(k) for k in draw(ints, 300)]
    assert text.sample(300).tolist() == [str(k) for k in ints.sample(300).tolist()]


def test_hot_int_keys_become_text_and_mix_with_str_keys() -> None:
    dist = build({"kind": "hot", "keys": [42, "42x"], "share": 1.0}, key_type="str")
    assert set(draw(dist, 200)) == {"42", "42x"}
    assert set(dist.sample(200).tolist()) == {"42", "42x"}


@pytest.mark.parametrize("data,message", [
    ([{"kind": "uniform"}, {"kind": "prefixed", "prefix": "user-"}],
     "keys[1] (prefixed) yields str keys but routing.key_type is int"),
    ({"kind": "hot", "keys": ["celebrity"], "share": 0.1},
     "keys (hot) yields str keys but routing.key_type is int"),
    ([{"kind": "zipf", "n": 3, "exponent": 1},
      {"kind": "mixture", "components": [{"kind": "uniform"},
                                         {"kind": "prefixed", "prefix": "u"}]}],
     "keys[1].components[1] (prefixed) yields str keys"),
    ({"kind": "hot", "keys": [1], "share": 0.1, "base": {"kind": "prefixed", "prefix": "u"}},
     "keys.base (prefixed) yields str keys"),
    ({"kind": "prefixed", "prefix": "a", "inner": {"kind": "prefixed", "prefix": "b"}},
     "keys.inner (prefixed) yields str keys but a prefixed distribution's inner keys must be int"),
])
def test_str_keys_under_int_routing_are_usage_errors(data: Any, message: str) -> None:
    with pytest.raises(UsageError) as err:
        build(data, key_type="int")
    assert message in str(err.value)
    assert err.value.exit_code == EXIT_USAGE


def test_prefixed_inner_must_be_int_even_under_str_routing() -> None:
    with pytest.raises(UsageError, match=r"keys\.inner \(hot\)"):
        build({"kind": "prefixed", "prefix": "u",
               "inner": {"kind": "hot", "keys": ["x"], "share": 1}}, key_type="str")


@pytest.mark.parametrize("specs,seed,key_type,message", [
    ([], 1, "int", "at least one"),
    ({"kind": "uniform"}, 1, "bytes", "key_type"),
    ({"kind": "uniform"}, -1, "int", "seed"),
])
def test_bad_build_arguments(specs: Any, seed: int, key_type: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build_distribution(parse_keys(specs) if specs else specs, seed, key_type)


# --- replay ---------------------------------------------------------------------


def replay(path: Path, key_type: str = "int", **fields: Any) -> Distribution:
    return build({"kind": "replay", "path": str(path), **fields}, key_type=key_type)


def test_replay_one_per_line_skips_blanks_and_loops(tmp_path: Path) -> None:
    path = write(tmp_path / "ids.txt", "\ufeff10\n\n  20  \r\n30\n   \n")
    dist = replay(path)
    assert dist.value_type == "int"
    assert draw(dist, 7) == [10, 20, 30, 10, 20, 30, 10]
    assert dist.sample(5).tolist() == [20, 30, 10, 20, 30]  # the same cursor goes on


def test_replay_streams_past_chunk_boundaries(tmp_path: Path) -> None:
    n = 10_007
    path = write(tmp_path / "ids.txt", "".join(f"{i}\n" for i in range(n)))
    dist = replay(path)
    expected = list(range(n)) * 2
    assert draw(dist, 2 * n) == expected
    got = np.concatenate([dist.sample(k) for k in (1, 4095, 4097, 3000, 2 * n - 11193)])
    assert got.tolist() == expected


def test_replay_csv_column_by_name() -> None:
    dist = replay(DATA / "accounts.csv", column="user_id")
    expected = [20200000 + 100 * j for j in range(10)]
    assert draw(dist, 12) == expected + expected[:2]
    labels = replay(DATA / "accounts.csv", key_type="str", column="label")
    assert draw(labels, 2) == ["load test, batch 0", "tester1"]


def test_replay_csv_column_by_index(tmp_path: Path) -> None:
    path = write(tmp_path / "orders.csv", '1,"a,b",300\n2,x,400\n\n3,"y",500\n')
    assert draw(replay(path, column=2), 4) == [300, 400, 500, 300]
    assert draw(replay(path, key_type="str", column=1), 3) == ["a,b", "x", "y"]
    headed = write(tmp_path / "headed.csv", "id;uid\n1;7\n2;8\n")
    assert draw(replay(headed, column=1, header=True, delimiter=";"), 3) == [7, 8, 7]


def test_replay_value_type_follows_the_requested_key_type(tmp_path: Path) -> None:
    path = write(tmp_path / "ids.txt", "007\nabc-1\n")
    text = replay(path, key_type="str")
    assert text.value_type == "str" and draw(text, 2) == ["007", "abc-1"]
    numbers = write(tmp_path / "n.txt", "007\n-3\n")
    parsed = build({"kind": "replay", "path": str(numbers), "key_type": "int"}, key_type="str")
    assert draw(parsed, 2) == ["7", "-3"]  # parsed as int, routed as decimal text
    with pytest.raises(UsageError, match=r"keys \(replay\) yields str keys"):
        build({"kind": "replay", "path": str(numbers), "key_type": "str"}, key_type="int")


def test_replay_without_loop_is_exhausted(tmp_path: Path) -> None:
    path = write(tmp_path / "ids.txt", "1\n2\n3\n")
    dist = replay(path, loop=False)
    assert draw(dist, 3) == [1, 2, 3]
    with pytest.raises(ReplayExhausted, match="exhausted after 3 keys"):
        dist.sample(1)
    with pytest.raises(ReplayExhausted):
        dist.sample(4)


@pytest.mark.parametrize("content,fields,where,what", [
    ("", {}, ":1:", "no keys"),
    ("\n  \n", {}, ":3:", "no keys"),
    ("user_id\n", {"column": "user_id"}, ":2:", "only a header"),
    ("1\n2\nnope\n4\n", {}, ":3:", "'nope' is not an integer"),
    ("1\n2.5\n", {}, ":2:", "not an integer"),
    ("1\n99999999999999999999\n", {}, ":2:", "64-bit"),
    ("id,uid\n1,2\n", {"column": "user_id"}, ":1:", "column 'user_id' not in the header (id, uid)"),
    ("1,2\n3\n", {"column": 1}, ":2:", "no column 1"),
    ("1,2\n3,\n", {"column": 1}, ":2:", "empty key"),
])
def test_replay_errors_name_path_and_line(tmp_path: Path, content: str, fields: dict,
                                          where: str, what: str) -> None:
    path = write(tmp_path / "keys.csv", content)
    with pytest.raises(UsageError) as err:
        replay(path, **fields)
    assert f"{path}{where}" in str(err.value)
    assert what in str(err.value)


def test_replay_bad_line_far_into_the_file_fails_the_build(tmp_path: Path) -> None:
    path = write(tmp_path / "ids.txt", "".join(f"{i}\n" for i in range(900_000)) + "oops\n")
    with pytest.raises(UsageError, match=f"{path}:900001: 'oops'"):
        replay(path)  # the whole file is validated before any key is handed out


def test_replay_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=f"{tmp_path / 'absent.txt'}: cannot read"):
        replay(tmp_path / "absent.txt")
    with pytest.raises(UsageError, match="cannot read"):
        replay(tmp_path)  # a directory


def test_replay_rejects_non_utf8(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_bytes(b"1\n\xff\xfe\n")
    with pytest.raises(UsageError, match=":2: not valid UTF-8"):
        draw(replay(path, key_type="str"), 2)


def _make_export(path: Path, megabytes: int) -> int:
    """A CSV export of orders with a wide payload column, ``megabytes`` in size."""
    payload = '"{""note"": ""' + "x" * 400 + '""}"'
    rows = 0
    with path.open("w", encoding="utf-8") as f:
        f.write("order_id,user_id,created_at,payload\n")
        while f.tell() < megabytes * 2**20:
            f.write("".join(f"{j},{(j * 7919) % 1000003},2020-03-01T12:00:00Z,{payload}\n"
                            for j in range(rows, rows + 10_000)))
            rows += 10_000
    return rows


def _replay_peak(path: Path) -> tuple[int, int]:
    """Replay the whole file once; keys seen and peak traced memory while doing so."""
    dist = replay(path, column="user_id", loop=False)
    seen = 0
    tracemalloc.start()
    try:
        while True:
            seen += len(dist.sample(5000))
    except ReplayExhausted:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return seen, peak


def test_replay_memory_does_not_scale_with_the_file(tmp_path: Path) -> None:
    small_rows = _make_export(tmp_path / "small.csv", 5)
    big_rows = _make_export(tmp_path / "big.csv", 50)
    small_seen, small_peak = _replay_peak(tmp_path / "small.csv")
    big_seen, big_peak = _replay_peak(tmp_path / "big.csv")
    assert (small_seen, big_seen) == (small_rows // 5000 * 5000, big_rows // 5000 * 5000)
    assert big_peak < 4 * BLOCK_BYTES  # the file is 50 MB and holds >100k keys
    assert big_peak < small_peak + 256 * 1024


# --- validation at the configuration boundary -----------------------------------------


ADAPTER: TypeAdapter[Any] = TypeAdapter(list[KeySpec])


@pytest.mark.parametrize("spec,field", [
    ({"kind": "gaussian"}, "kind"),
    ({"kind": "strided", "start": 1, "step": 100, "count": 0}, "count"),
    ({"kind": "strided", "start": 1, "step": 100, "count": -3}, "count"),
    ({"kind": "strided", "start": 1, "step": 0, "count": 3}, "step"),
    ({"kind": "hot", "keys": [1], "share": 1.5}, "share"),
    ({"kind": "hot", "keys": [1], "share": -0.1}, "share"),
    ({"kind": "hot", "keys": [], "share": 0.5}, "keys"),
    ({"kind": "hot", "keys": [1.5], "share": 0.5}, "keys"),
    ({"kind": "hot", "keys": [1, 2], "share": 0.5, "weights": [1]}, "weights"),
    ({"kind": "zipf", "n": 10, "exponent": 0}, "exponent"),
    ({"kind": "zipf", "n": 0, "exponent": 1}, "n"),
    ({"kind": "uniform", "low": 5, "high": 4}, "low"),
    ({"kind": "uniform", "hihg": 4}, "hihg"),
    ({"kind": "uniform", "weight": -1}, "weight"),
    ({"kind": "snowflake", "rate": 10**7}, "rate"),
    ({"kind": "snowflake", "rate": 1, "workers": 2000}, "workers"),
    ({"kind": "replay", "path": "x", "column": "id", "header": False}, "header"),
    ({"kind": "mixture", "components": []}, "components"),
    ({"kind": "mixture", "components": [{"kind": "uniform", "weight": 0}]}, "weights"),
])
def test_bad_specs_fail_validation(spec: dict, field: str) -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python([{"kind": "uniform"}, spec])
    with pytest.raises(UsageError) as err:
        parse_keys([{"kind": "uniform"}, spec])
    assert str(err.value).startswith("keys[1]")
    assert field in str(err.value)


def test_parse_keys_reports_nested_field_paths() -> None:
    bad = {"kind": "mixture", "components": [
        {"kind": "hot", "keys": [1], "share": 0.5, "base": {"kind": "zipf", "n": 0, "exponent": 1}},
    ]}
    with pytest.raises(UsageError, match=r"^keys\.components\[0\]\.base\.n: "):
        parse_keys(bad)


def test_yaml_example_parses_into_specs() -> None:
    yaml = pytest.importorskip("yaml")
    doc = yaml.safe_load("""
keys:
  - kind: strided
    weight: 1
    start: 20200000
    step: 100
    count: 127
  - kind: zipf
    weight: 0.5
    n: 100000
    exponent: 1.1
""")
    specs = parse_keys(doc["keys"])
    assert [s.kind for s in specs] == ["strided", "zipf"]
    assert [s.weight for s in specs] == [1, 0.5]
    dist = build_distribution(specs, 2020, "int")
    keys = dist.sample(30_000)
    assert_share(int((keys >= 20200000).sum()), len(keys), 1 / 1.5)


# --- the key supply of a request loop ------------------------------------------------------


def test_a_key_supply_draws_in_blocks_and_follows_the_distribution() -> None:
    from skewcheck.keys import KeySupply

    dist = build({"kind": "strided", "start": 20200000, "step": 100, "count": 127})
    supply = KeySupply(dist, block=256)
    keys = [supply.next() for _ in range(3000)]  # several blocks
    assert all((k - 20200000) % 100 == 0 and 20200000 <= k < 20200000 + 127 * 100 for k in keys)
    assert len(set(keys)) == 127 and all(type(k) is int for k in keys)


def test_a_replay_that_ends_is_supplied_one_key_at_a_time_to_the_last(tmp_path: Path) -> None:
    from skewcheck.keys import KeySupply, ReplayExhausted, ends, parse_keys

    ids = tmp_path / "ids.txt"
    ids.write_text("".join(f"{1000 + i}\n" for i in range(10)))
    specs = parse_keys([{"kind": "mixture", "components": [{"kind": "replay", "path": str(ids), "loop": False}]}])
    assert ends(specs) and not ends(parse_keys([{"kind": "replay", "path": str(ids)}]))
    supply = KeySupply(replay(ids, loop=False), one_at_a_time=True)
    assert [supply.next() for _ in range(10)] == list(range(1000, 1010))
    with pytest.raises(ReplayExhausted, match="after 10 keys"):
        supply.next()
