"""Views of the `batches` app, by area: coi (patients → infusion), execution (batches,
master batch records, deviations, materials and equipment)."""
