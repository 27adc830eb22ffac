"""The message log: records, hash chain, seals, time-stamps, evidence, verification, archives.

Uses ``viss_bridge.security`` (signing, trust) and nothing above it: the
server adapts its exchanges to :class:`RecordInput`.
"""

from viss_bridge.msglog.log import MessageLog, Receipt
from viss_bridge.msglog.records import RecordInput
from viss_bridge.msglog.store import LogUnavailable

__all__ = ["LogUnavailable", "MessageLog", "Receipt", "RecordInput"]
