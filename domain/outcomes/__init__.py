"""SPEC §5 and §3 (the terms that apply): the payment rules, one rule per module.

Pure: facts in, values out; nothing here reads a database or the clock, nor imports anything of
the project outside `domain/`. `docs.md` maps each paragraph of the SPEC to its module and
function; each module's docstring shows the rule on a small example.
"""
