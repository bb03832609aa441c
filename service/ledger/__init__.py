"""The ledger: the one writer of the node's tables and audit log.

`committer` runs requests' work as units in group-committed batches (dense audit
indices, one transaction a batch, each unit all-or-nothing); `cache` is what the
units of one batch know of rows not written yet; `ratelimit` the token buckets the
units take from, shared by every process through the database.
"""
