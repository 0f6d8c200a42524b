"""The Kafka edge: what Locust publishes and what the sidecar consumes.

    events      request events and frames in: batch decoding with malformed reasons
    security    kafka-python connection settings from the scenario's `kafka:` section
    consumer    the consumer-group loop: poll, decode, tally, commit
    outbox      the bounded, never-blocking queue between Locust's users and the producer
    producer    the Locust run hook that publishes frames or events

The core (routing, tally, summary, gate) never imports this package.
"""
