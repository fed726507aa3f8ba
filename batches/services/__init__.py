"""Every write of the `batches` app. Split by area; import from the submodules."""
