"""The consumer process: the loop that applies Kafka's events to the store exactly once, the log guard,
the Kafka adapters, the consumer's metrics and its composition root (python -m ledger_svc.consume.main)."""
