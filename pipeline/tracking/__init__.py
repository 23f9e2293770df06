"""MLflow runs and Hugging Face model cards."""
