"""Learning: estimators, DiCE, batching, optimisers and the learners."""
