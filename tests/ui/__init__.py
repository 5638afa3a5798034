"""Browser tests of the MLflow web UI served by this server."""
