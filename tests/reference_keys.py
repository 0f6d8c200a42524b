"""Hidden-style keys for checking routers against real implementations: ints across the whole
int64 range (negatives, bounds, int32 edges), and text with astral characters, empty keys,
Redis hash tags, control characters and long keys."""

from __future__ import annotations

import random

import numpy as np

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
EDGE_INTS = [0, 1, -1, 9, 10, -10, 255, 256, -129, -128, 127, 128, INT32_MIN, INT32_MAX,
             INT32_MIN - 1, INT32_MAX + 1, 2**32 - 1, 2**32, -(2**32), INT64_MIN, INT64_MAX,
             INT64_MIN + 1, INT64_MAX - 1, 10**18, -(10**18)]
REFERENCE_KEYS = 10_000

# UTF-8 widths 1 to 4, braces for hash tags, a tab, and bytes >= 0x80 in every tail position
_ALPHABET = ("abcxyzABC019-_:/ \t{}\u00e9\u00ff\u07ff\u0800\u4e2d\uffff"
             "\U0001F600\U00010348\U0010FFFF")


def int_keys(seed: int, n: int = REFERENCE_KEYS, low: int = INT64_MIN,
             high: int = INT64_MAX) -> list[int]:
    rng = np.random.default_rng(seed)
    edges = [k for k in EDGE_INTS if low <= k <= high]
    wide = rng.integers(low, high, size=n // 2, dtype=np.int64, endpoint=True).tolist()
    small = rng.integers(max(low, -(10**6)), min(high, 10**6), size=n - n // 2 - len(edges),
                         endpoint=True).tolist()
    keys = edges + wide + small
    random.Random(seed).shuffle(keys)
    return keys


def text_keys(seed: int, n: int = REFERENCE_KEYS, nul: bool = False) -> list[str]:
    rng = random.Random(seed)
    alphabet = _ALPHABET + ("\0" if nul else "")
    keys = ["", "{}", "{a}", "a{b}c{d}", "}{x}", "user:{42}:cart", "\U0001F600", "{\U0001F600}x"]
    keys += [f"user-{rng.randrange(10**12)}" for _ in range(n // 4)]
    while len(keys) < n - 2:
        length = rng.choice([0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17, 31, 32, 33, 40, 64])
        keys.append("".join(rng.choices(alphabet, k=length)))
    keys += ["k" * 300, "{" + "\u00e9" * 90 + "}"]
    rng.shuffle(keys)
    return keys


def hex_lines(keys: list[str]) -> str:
    """Keys as the hex of their UTF-8, one a line: how the reference programs read text."""
    return "".join(k.encode().hex() + "\n" for k in keys)
