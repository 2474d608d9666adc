"""DQN replay: frames stored once (frames), n-step transitions (nstep), prioritized sampling (sum_tree), the
release/textbook rules (rules), the memory joining them (memory), its size check (sizing) and snapshots
(persistence)."""

from impoola.replay.memory import Batch, ReplayMemory
from impoola.replay.persistence import check_replay_disk, has_snapshot, keep_only, restore_replay, save_snapshot
from impoola.replay.rules import RELEASE, RULES, TEXTBOOK, ReplayRules, rules_for
from impoola.replay.sizing import available_memory

__all__ = [
    "RELEASE", "RULES", "TEXTBOOK", "Batch", "ReplayMemory", "ReplayRules", "available_memory",
    "check_replay_disk", "has_snapshot", "keep_only", "restore_replay", "rules_for", "save_snapshot",
]
