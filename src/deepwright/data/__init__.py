"""Tables: reading, cleaning, splitting, type inference and tensor batches. Knows tables, never models."""
