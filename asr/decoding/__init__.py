"""Turning the model's ``(T, V)`` log-probabilities into words: greedy and beam search."""
