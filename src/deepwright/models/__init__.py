"""Model blocks, combiners and the ECD model. Knows tensors, never columns."""
