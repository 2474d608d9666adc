"""The machinery around a training run: its directory (rundir), log (runlog), checkpoints (checkpoint), atomic files
(files), seeding (seeding), start-up checks (startup), signals and non-finite guards (guards), the session holding
them (session), the checkpointed state (training_state) and the context a script enters (training_run)."""
