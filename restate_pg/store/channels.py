"""The LISTEN/NOTIFY channels of one schema.

Workers listen on the schema's work channel (a hint that something is ready) and on their own
channel (a result they wait for, a mailbox that has news). Anyone who creates work, a worker or
an application in its own transaction, hints on the work channel.
"""

from __future__ import annotations


def work_channel(schema: str) -> str:
    """Hints that there is work, heard by every worker of `schema`."""
    return f"rpg_{schema}_work".lower()


def process_channel(schema: str, process_id: str) -> str:
    """Messages for one process (a worker or a waiting client)."""
    return f"rpg_{schema}_{process_id}".lower()
