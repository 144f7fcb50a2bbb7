"""Real tables: which columns are categorical, the levels a model keeps, and the one mapping
of every request's text to the model's codes (docs/tables.md)."""
