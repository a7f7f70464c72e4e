"""SSDA903 returns: read, match, clip to the period, validate, and plan the events (SPEC §6).

A return is a borough's statement about one period: for every referred child, the days of that
period on which they were looked after. The pieces, pure where they can be:

- `period`: the days a return speaks for, and `ReturnError` (the import cannot go ahead);
- `reading`: `read_return` reads the DfE CSV pair (header and episodes tables) or the XML form
  of the return (detected from the content) into `EpisodeRow`s; a malformed file is `Rejected`
  with every structural problem named by file and line;
- `clipping`: `clip_child` validates one child's rows and clips them to the period;
- `fitting`: a return that does not fit the period given (another year's) is refused,
  naming the period it looks like;
- `view`: `view_from_facts` folds the facts known now into what the planner needs;
- `planning` and `writer`: `plan_import` matches rows to referred cases and turns the return
  into the events that make the ledger say what the return says: new, corrected and retracted
  episodes, then `CareDataReceived`;
- `importing`: `import_return` is the one impure step: read the ledger, plan, append in one
  batch, all under the writer lock (or, with `check`, roll it back);
- `reverting`: `revert_import` undoes an import by retracting what it recorded.

The readings (an auditor's) are in docs/ssda903.md and in the modules they belong to.
"""
