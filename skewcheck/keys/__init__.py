"""Keys: the scenario's key specs, the seeded distributions they build, replays of real IDs, and
the supply a request loop draws from.

    spec           pydantic specs of the `keys:` section (uniform, zipf, hot, strided, ...)
    distributions  seeded generators with a vectorised `sample(n)`
    replay         real IDs streamed from a file, in bounded memory
    supply         keys for a request loop, drawn a block at a time
"""

from skewcheck.keys.distributions import Distribution, build_distribution
from skewcheck.keys.replay import ReplayExhausted
from skewcheck.keys.spec import (
    KINDS,
    HotSpec,
    KeySpec,
    MixtureSpec,
    PrefixedSpec,
    ReplaySpec,
    SnowflakeSpec,
    StridedSpec,
    UniformSpec,
    ZipfSpec,
    parse_keys,
)
from skewcheck.keys.supply import KeySupply, ends

__all__ = [
    "KINDS", "Distribution", "HotSpec", "KeySpec", "KeySupply", "MixtureSpec", "PrefixedSpec",
    "ReplayExhausted", "ReplaySpec", "SnowflakeSpec", "StridedSpec", "UniformSpec", "ZipfSpec",
    "build_distribution", "ends", "parse_keys",
]
