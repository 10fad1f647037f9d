"""The ledger service: consumes SumComputed exactly once into a store on a volume and serves the total."""
