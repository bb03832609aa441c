"""An independent C2SP transparency-log client, written from the C2SP texts alone.

It shares no code with ``service/``: it exists so that migex's witness, cosignature
and proof formats are checked against a second reading of the specifications
(signed-note, tlog-checkpoint, tlog-cosignature, tlog-witness, tlog-proof and
RFC 6962/9162 Merkle trees), not against themselves.
"""
