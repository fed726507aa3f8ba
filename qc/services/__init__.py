"""Every write of the `qc` app. Split by area; import from the submodules."""
