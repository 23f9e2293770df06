"""Reading sources, cleaning rows, splitting without leakage and adapting shapes to what a loss needs."""
