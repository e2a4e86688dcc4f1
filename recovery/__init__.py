"""Recovery: consistent backups, snapshots, restore and verification (Gate 4)."""
