"""`make bench`: the local stack under pinned load tools, measured in one run (bench.run wires it)."""
