"""Attachments (docs/protocol.md, 'Attachments (v1.1)'): the content-addressed store of
their bytes and the check of their media type."""
