"""Paper figures and tables from finished runs: local run directories or W&B exports (cached to disk)."""
