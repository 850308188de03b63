"""Monthly backup to S3: content-addressed objects, verified uploads, manifests written last,
restores that check every byte, retention that never deletes what a snapshot needs.

Core only (no Prefect); tasks/backup.py and flows/ wrap it.
"""

from llm_upkeep.backup.config import BackupConfig, BackupSet
from llm_upkeep.backup.errors import BackupError, NotConfiguredError

__all__ = ["BackupConfig", "BackupSet", "BackupError", "NotConfiguredError"]
