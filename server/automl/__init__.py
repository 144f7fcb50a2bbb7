"""AutoML: the best model for a table, searched with ordinary training jobs on every free
slot: `space` (what is tried, in which order), `search` (one search's state and
leaderboard), `runner` (starting candidates on free slots, ending with the winner saved)."""
