"""The documented bounds on what skewcheck accepts: each lives here once, and error messages
quote them. Past a bound is input that is corrupt, hostile or a unit mistake, never load."""

from __future__ import annotations

MAX_KEY_CHARS = 256  # an ID, not a document: longer keys are refused rather than hashed
MAX_MESSAGE_BYTES = 1 << 20  # Kafka's default max.message.bytes: larger is no message of ours
MAX_NAME_CHARS = 2048  # a request name (URL path) in an event
MAX_TS = 1e11  # unix seconds, year 5138: anything later is a unit mistake (ms, µs)
MAX_LATENCY_MS = 86_400_000.0  # a day
MAX_FRAME_REQUESTS = 10**9  # one frame's requests; more is corruption, and it keeps int64 sums safe
MAX_FRAME_WINDOW_S = 86_400.0  # a frame covers at most a day
MAX_SOURCE_CHARS = 256  # a worker id or host:pid
MAX_TOP_KEYS = 4096  # heavy-hitter counters in one frame
MAX_MISMATCH_EXAMPLES = 10  # keys shown where the target's X-Shard disagreed with the router
MAX_SCENARIO_SHARDS = 1_000_000  # a tally is routers × shards × window slots of int64
MAX_WINDOW_S = 600.0  # the live window; one slot a second
MAX_TALLY_CELLS = 64 << 20  # routers × shards × window slots: 512 MiB of counts at most
MAX_CONFIG_NODES = 100_000  # values a scenario may expand to (YAML aliases included)
MAX_OBSERVED_PAIRS = 5000  # (key, X-Shard) pairs a run keeps for `skewcheck infer`
MAX_FRAME_PAIRS = 200  # of those, what one frame carries (frames stay small)
