"""Views of the `qc` app, by area: quality (specifications, samples, results, OOS),
release (checklist, certification, release queue), documents (signed batch records)."""
