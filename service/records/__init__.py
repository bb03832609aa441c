"""Body models of every message type, their validators, and the published schemas.

Other packages call `service.records.registry` (`validate_body`, `body_json_schema`,
`MESSAGE_TYPES`); `service.records.schemas` writes and checks `schemas/`.
"""
