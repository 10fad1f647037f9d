"""make soak: a long run of the local stack under every fault at once, checked through the contract."""
