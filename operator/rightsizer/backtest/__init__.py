"""Backtests: what a policy would have done on history, beside reference strategies."""
