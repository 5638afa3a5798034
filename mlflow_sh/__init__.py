"""mlflow-sharinghub: an MLflow tracking and model-registry server on Django."""

__version__ = "0.1.0"
