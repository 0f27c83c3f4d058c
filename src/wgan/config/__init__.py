"""Typed run configuration (sections, validation, resolution, presets): dataclasses with defaults,
YAML presets and dotted overrides.

A run is described by one :class:`Config`, composed of small sections that sit next to the
components they configure. Values come from, in order: the dataclass defaults, a preset or a
YAML file (which may ``extends:`` another preset), and ``key=value`` overrides on the command line
(dotted keys such as ``critic.hidden=256``). Every key is checked: an unknown key is rejected with
the closest valid names, and a value of the wrong type or out of range is rejected with the
expected type or range.

In a YAML file a key may be dotted too (``train.steps: 500`` is ``train: {steps: 500}``); a key
given twice, in one spelling or both, is an error naming it (PyYAML would keep the last one
silently). Every float must be finite, and every count has an upper bound declared next to its
field (``_at_most``). :data:`RESUME_MAY_CHANGE` lists the keys a resumed run may change.
:func:`config_keys` lists every key with its type, default, range and meaning (``wgan config``).
"""

from wgan.config.describe import ConfigKey, config_keys, config_sections
from wgan.config.resolve import (
    absolute_data_path,
    apply_mapping,
    dump_yaml,
    from_dict,
    load_preset_mapping,
    override_items,
    parse_override,
    preset_description,
    preset_names,
    read_yaml_mapping,
    resolve,
    set_value,
)
from wgan.config.sections import (
    MAX_SEED,
    MAX_STEPS,
    ConditionalConfig,
    Config,
    ConstraintConfig,
    DataConfig,
    GeneratorConfig,
    NetConfig,
    ObjectiveConfig,
    OptimConfig,
    TrainConfig,
    TricksConfig,
)
from wgan.config.validate import (
    RESUME_MAY_CHANGE,
    changed_keys,
    check_resume,
    check_seed,
    leaf_items,
    validate,
)

__all__ = [
    "MAX_SEED",
    "MAX_STEPS",
    "RESUME_MAY_CHANGE",
    "ConditionalConfig",
    "Config",
    "ConfigKey",
    "ConstraintConfig",
    "DataConfig",
    "GeneratorConfig",
    "NetConfig",
    "ObjectiveConfig",
    "OptimConfig",
    "TrainConfig",
    "TricksConfig",
    "absolute_data_path",
    "apply_mapping",
    "changed_keys",
    "check_resume",
    "check_seed",
    "config_keys",
    "config_sections",
    "dump_yaml",
    "from_dict",
    "leaf_items",
    "load_preset_mapping",
    "override_items",
    "parse_override",
    "preset_description",
    "preset_names",
    "read_yaml_mapping",
    "resolve",
    "set_value",
    "validate",
]
