"""Backups of the ledger's store taken while it runs, and their restore onto an empty volume."""
