"""/graphql, as the MLflow web UI queries it: the schema (schema.py), its safety limits (limits.py), the view."""
