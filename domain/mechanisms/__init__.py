"""Payment mechanisms other than weeks out of care (SPEC §3 `mechanism`), one rule per module.

`weeks_out_of_care` stays where it always was (`domain/outcomes/`); these read the same facts
and terms and answer beside it. The map is in `docs.md`.
"""
