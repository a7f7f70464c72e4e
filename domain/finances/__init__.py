"""SPEC §8 rules: investors' returns and the contract's finances (docs.md maps each reading)."""
