"""The node's configuration: the operator's YAML file, read, checked and built once.

`model` holds the file's shape and `load_config`; `yamlsource` parses YAML keeping line
numbers; `types` the value types and patterns; `crosscheck`, `keyfiles` and
`witnesscheck` check the whole; `build` makes the pure domains' values (the partner
registry) from it.
"""

from service.config.model import (
    AgreementConfig,
    AttachmentStoreConfig,
    AuditConfig,
    ConfigError,
    ConfigProblem,
    ConsoleConfig,
    DeliveryConfig,
    LimitsConfig,
    ListenConfig,
    NodeConfig,
    NodeSection,
    PartnerAttachmentsConfig,
    PartnerConfig,
    PartnerKeyConfig,
    RateLimitConfig,
    RetentionConfig,
    RuleConfig,
    SigningKeyConfig,
    TokenConfig,
    WitnessConfig,
    WitnessedByConfig,
    WitnessLogConfig,
    load_config,
    render_sample_config,
)

__all__ = [
    "AgreementConfig",
    "AttachmentStoreConfig",
    "AuditConfig",
    "ConfigError",
    "ConfigProblem",
    "ConsoleConfig",
    "DeliveryConfig",
    "LimitsConfig",
    "ListenConfig",
    "NodeConfig",
    "NodeSection",
    "PartnerAttachmentsConfig",
    "PartnerConfig",
    "PartnerKeyConfig",
    "RateLimitConfig",
    "RetentionConfig",
    "RuleConfig",
    "SigningKeyConfig",
    "TokenConfig",
    "WitnessConfig",
    "WitnessLogConfig",
    "WitnessedByConfig",
    "load_config",
    "render_sample_config",
]
