"""The tamper-evident audit log: a hash chain of every operator, system and consent action.

Each entry stores the hash of the entry before it and its own hash over that previous hash
and its canonical content. The chain head (last sequence number and hash) is kept in its own
row, which appending locks, so entries are appended strictly one after another.
:func:`parrain.audit.service.verify_chain` recomputes everything and names any entry that was
edited, deleted or moved.
"""
