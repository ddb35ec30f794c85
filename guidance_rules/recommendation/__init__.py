"""Recommending and explaining: the chain driver and its caches (`recommender`), and the
reasoning chain, notes and evidence of an answer (`explain`)."""
