"""The machine-learning rules the service applies around the five libraries."""
