"""The library's evaluators and typed scores, shared by baseline, validation during training and evaluate."""
