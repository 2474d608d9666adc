"""Helpers shared by the tests (imported as `support.<module>`; `tests/` is on pytest's `pythonpath`):

- `paths`: the repository root and the test data directory.
- `runs`: the options of tiny real PPO and DQN runs.
- `identical_runs`: tiny PPO runs that exercise every piece of resumable state, compared bitwise.
- `replay`: scripted trajectories fed into a replay memory, and what it stored.
- `synthetic_env`: a synthetic image task with ProcgenVecEnv's interface (the learning tests).
- `kill_at`: a script that runs a training script and SIGKILLs it at an exact point (the resume tests).
"""
