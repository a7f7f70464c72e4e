"""SPEC §7 rules: claims as facts, what a payer owes, reconciliation, statements (docs.md)."""
