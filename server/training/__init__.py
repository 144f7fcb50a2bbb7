"""Training: every fit is a job, run on a backend behind a gate of slots. This package owns
the jobs and their progress, the slots and the limits, the cores trainings run on, and the
fit that every backend runs (`backends/` are the two ways it runs)."""
