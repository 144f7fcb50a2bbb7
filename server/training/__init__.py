"""Training: every fit is a job, run on a backend behind a gate of slots.

trainer.py   Trainer: starts jobs, waits for them, cancels them, watches progress and limits
jobs.py      Job (states, progress, what the API shows) and JobBook (the kept history)
gate.py      SlotGate: a name trains once; no free slot is a 503 at once, never a queue
backend.py   TrainingBackend / Run: the seam a backend implements (run, progress, stop)
local.py     LocalBackend: one worker process of this server per slot
worker.py    what runs in the training process: fit (shared by every backend) and save
progress.py  per-library progress hooks, and the shared memory they write to
"""
