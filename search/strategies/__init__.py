"""Strategies: best-of-N, beam search, lookahead, DVTS, revision chains, selection, the compute-optimal schedule,
and what each spends."""
