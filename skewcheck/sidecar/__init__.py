"""The sidecar: what `skewcheck sidecar` holds and serves while it consumes Kafka (the consumer
itself is in skewcheck.kafka).

    state       the tally and counters behind one consumer, its `/state` document, merging several
    checkpoint  the state file that carries counts and offsets across a restart
    server      the HTTP endpoints (Prometheus `/metrics`, `/verdict`, `/state`, health)
    remote      reading `/state` from running sidecars (for `skewcheck gate --sidecar`)

The core (routing, tally, summary, gate) never imports this package.
"""
