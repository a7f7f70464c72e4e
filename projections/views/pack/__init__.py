"""The auditor's pack (`soc-ledger audit-pack`): every figure with its evidence, as static HTML
pages, a workbook with CSVs beside it, and a manifest of SHA-256 hashes. `collect` reads the
reports, `pages` and `workbook` shape them, `build` writes the folder."""
