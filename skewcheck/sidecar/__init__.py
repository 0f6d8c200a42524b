"""The Kafka edge: `skewcheck sidecar` consumes request events and worker frames, tallies them per
router × shard and serves the view over HTTP (Prometheus `/metrics`, `/verdict`, `/state`).

    messages    Kafka message schemas (pydantic) and batch decoding with malformed reasons
    security    kafka-python connection settings from the scenario's `kafka:` section
    state       the tally and counters behind one consumer, its `/state` document, merging several
    checkpoint  the state file that carries counts and offsets across a restart
    consumer    the consumer-group loop: poll, decode, tally, commit
    server      the HTTP endpoints
    remote      reading `/state` from running sidecars (for `skewcheck gate --sidecar`)

The core (routing, tally, summary, gate) never imports this package.
"""
