"""DVC pipeline stages for fine-tuning sentence-transformers models (see dvc.yaml)."""
