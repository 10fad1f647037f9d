"""The ledger's pure rules, with no I/O: which events change the total, and which Kafka log a partition's
offsets belong to. The store and the consumer both depend on them."""
