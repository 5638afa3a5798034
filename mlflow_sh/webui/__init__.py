"""The MLflow web UI: MLflow's own bundle, fetched from the pinned wheel and served with a SharingHub script."""
