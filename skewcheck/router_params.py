"""Router parameters: one pydantic model per router that takes any, validated where they are given
(the scenario's `routing.params`, or `skewcheck route --param k=v`)."""

from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from skewcheck.errors import UsageError, validation_message

DEFAULT_VNODES = 16  # Cassandra 4.0+'s default num_tokens
FILE_PARAMS = ("ring", "slot_map", "splits_file")  # paths, read relative to the scenario file


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(_Params):
    pass


class HashModParams(_Params):
    # int: ShardingSphere on a SQL literal sees an Integer (a Long beyond int32);
    # long: a Java service with BIGINT ids hashes a Long (Long.hashCode(-5) is 4)
    java_type: Literal["int", "long"] = "int"


class PostgresParams(_Params):
    # the partition key column's type; None: int8 for int keys, text for str keys
    column_type: Optional[Literal["int4", "int8", "text"]] = None


class CassandraParams(_Params):
    ring: Optional[str] = None  # `nodetool ring` output or a system.peers `peer | tokens` table
    vnodes: int = Field(DEFAULT_VNODES, ge=1, le=4096)  # tokens per node of a seeded ring
    seed: int = Field(0, ge=0)  # seeds the token draw when no ring file is given
    int_type: Literal["bigint", "int"] = "bigint"  # the CQL type of an int partition key


class ElasticsearchParams(_Params):
    # index.number_of_routing_shards; None: the default an index is created with (7.0+)
    routing_num_shards: Optional[int] = Field(None, ge=1, le=2**31 - 1)


class RedisClusterParams(_Params):
    slot_map: Optional[str] = None  # CLUSTER NODES or CLUSTER SHARDS output
    slots: Optional[tuple[str, ...]] = None  # per shard: "0-5460", or "0-99,200-299"

    @model_validator(mode="after")
    def _one_source(self) -> "RedisClusterParams":
        if (self.slot_map is None) == (self.slots is None):
            raise ValueError("give exactly one of slot_map (a file) or slots (ranges per shard)")
        return self


class KetamaParams(_Params):
    # host[:port[:weight]] in client order; twemproxy's "host:port:weight name" too
    servers: Optional[tuple[str, ...]] = None
    # the key hash: libmemcached's ketama uses md5; a twemproxy pool its `hash` (fnv1a_64 default)
    hash: Literal["md5", "fnv1a_64"] = "md5"


class VitessParams(_Params):
    # shard names as Vitess spells them ("-80", "80-"); None: an even split of the keyspace IDs
    shard_ranges: Optional[tuple[str, ...]] = None


class RangeParams(_Params):
    # what the split points divide: the key itself, or a hash of it (mongo-hash: MongoDB's
    # hashed shard key; pg-hash: Citus' int32 hash)
    over: Literal["key", "murmur3", "xxhash64", "crc32", "pg-hash", "mongo-hash"] = "key"
    splits: Optional[tuple[int | str, ...]] = None  # shard i holds [splits[i-1], splits[i])
    splits_file: Optional[str] = None  # one split point per line

    @model_validator(mode="after")
    def _one_source(self) -> "RangeParams":
        if (self.splits is None) == (self.splits_file is None):
            raise ValueError("give exactly one of splits (a list) or splits_file (a file)")
        return self


PARAMS: dict[str, type[_Params]] = {
    "hash-mod": HashModParams,
    "pg-hash": PostgresParams,
    "citus": PostgresParams,
    "cassandra": CassandraParams,
    "elasticsearch": ElasticsearchParams,
    "redis-cluster": RedisClusterParams,
    "ketama": KetamaParams,
    "vitess-hash": VitessParams,
    "vitess-xxhash": VitessParams,
    "range": RangeParams,
}


def params_model(name: str) -> type[_Params]:
    return PARAMS.get(name, NoParams)


def parse_params(name: str, raw: Any, where: str = "") -> _Params:
    """Validated parameters of router `name`; UsageError naming the parameter otherwise."""
    if isinstance(raw, _Params):
        return raw
    model = params_model(name)
    if raw and model is NoParams:
        raise UsageError(f"{where + ': ' if where else ''}router {name} takes no parameters")
    try:
        return model.model_validate(raw or {})
    except ValidationError as exc:
        raise UsageError(validation_message(exc, root=where or f"{name} params",
                                            separator="; ")) from None


def canonical_params(params: _Params) -> tuple[tuple[str, Any], ...]:
    """Parameters as a hashable, ordered tuple (defaults included, unset options left out)."""
    return tuple(sorted(params.model_dump(exclude_none=True).items()))


def label(name: str, params: tuple[tuple[str, Any], ...]) -> str:
    """How reports name a router: `cassandra(ring=ring.txt, vnodes=16)`."""
    if not params:
        return name
    shown = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
                      for k, v in params)
    return f"{name}({shown})"


class RoutingParams(_Params):
    """The scenario's `routing.params`: each router's parameters under its name."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    hash_mod: Optional[HashModParams] = Field(None, alias="hash-mod")
    pg_hash: Optional[PostgresParams] = Field(None, alias="pg-hash")
    citus: Optional[PostgresParams] = None
    cassandra: Optional[CassandraParams] = None
    elasticsearch: Optional[ElasticsearchParams] = None
    redis_cluster: Optional[RedisClusterParams] = Field(None, alias="redis-cluster")
    ketama: Optional[KetamaParams] = None
    vitess_hash: Optional[VitessParams] = Field(None, alias="vitess-hash")
    vitess_xxhash: Optional[VitessParams] = Field(None, alias="vitess-xxhash")
    range: Optional[RangeParams] = None

    def of(self, name: str) -> Optional[_Params]:
        return getattr(self, name.replace("-", "_"), None)
