"""Byte-at-a-time hash kernels over a KeyText: each block step takes one little-endian word of
every key, and the last 0-3 bytes are taken one by one under a mask."""

from __future__ import annotations

from typing import Callable

import numpy as np

from skewcheck.keytext import KeyText

_U32 = np.uint32

ByteStep = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (state, byte) -> state


def fold_bytes(text: KeyText, state: np.ndarray, byte_step: ByteStep,
               word_step: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None
               ) -> np.ndarray:
    """Fold every key's bytes, in order, into `state` (one entry per key, modified and returned,
    in the KeyText's order: callers restore()). `word_step` may take four bytes at once."""
    def whole_word(head: np.ndarray, word: np.ndarray) -> np.ndarray:
        for shift in range(0, 32, 8):
            head = byte_step(head, ((word >> _U32(shift)) & _U32(0xFF)).astype(head.dtype))
        return head

    step = word_step or whole_word
    for i, (count, live) in enumerate(text.rounds(4)):
        head = state[:count]
        new = step(head.copy(), text.u32(i, count))
        if live is None:
            head[...] = new
        else:
            np.putmask(head, live, new)
    rest = text.lengths & 3
    if int(rest.max(initial=0)) == 0:
        return state
    word = text.u32(text.lengths >> 2, len(text))
    for j in range(3):
        live = rest > j
        if not live.any():
            break
        byte = ((word >> _U32(8 * j)) & _U32(0xFF)).astype(state.dtype)
        np.putmask(state, live, byte_step(state.copy(), byte))
    return state
