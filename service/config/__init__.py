"""The node's configuration: the operator's YAML file, read, checked and built once.

`model` holds the file's shape and `load_config`; `yamlsource` parses YAML keeping line
numbers; `types` the value types and patterns; `crosscheck` and `keyfiles` check the
whole; `build` makes the pure domains' values (the partner registry) from it.
"""

from service.config.model import (
    AgreementConfig,
    ConfigError,
    ConfigProblem,
    NodeConfig,
    PartnerConfig,
    PartnerKeyConfig,
    RuleConfig,
    load_config,
    render_sample_config,
)

__all__ = [
    "AgreementConfig",
    "ConfigError",
    "ConfigProblem",
    "NodeConfig",
    "PartnerConfig",
    "PartnerKeyConfig",
    "RuleConfig",
    "load_config",
    "render_sample_config",
]
