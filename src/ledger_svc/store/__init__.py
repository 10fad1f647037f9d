"""The SQLite store on the volume: its file and schema, the single writer, the read-only reader, and
crash-safe whole-file replacement."""
