"""The parameter schema: seed variable names, precedence, validation messages, YAML forms."""

from __future__ import annotations

import pytest

from assoc_logger_ros.config import (
    ConfigError,
    RecorderConfig,
    all_specs,
    load_yaml,
    resolve,
    spec,
)

SEED_ENV = {
    'TRANSFORMER_LOG_DIR': 'log_dir',
    'TRANSFORMER_LOG_EMBED_DIM': 'log_embed_dim',
    'APPEAR_MEMORY_ENABLE': 'appear_memory_enable',
    'CONFIDENCE_THRESHOLD': 'confidence_threshold',
    'SEG_ENABLE': 'seg_enable',
    'DIAG': 'diag',
}


@pytest.mark.parametrize('env_name,param', sorted(SEED_ENV.items()))
def test_seed_environment_variables_keep_their_names(env_name, param):
    """Every variable the seed document names maps to one setting under that exact name."""
    assert spec(param).env_name == env_name


def test_every_setting_is_documented_and_unique():
    """Each setting has a description, a unique name and a unique environment variable."""
    specs = all_specs()
    assert all(s.description for s in specs)
    assert len({s.name for s in specs}) == len(specs)
    assert len({s.env_name for s in specs}) == len(specs)


def test_other_settings_get_assoc_prefixed_env():
    """Settings without a seed variable read ASSOC_<NAME>."""
    assert spec('log_queue_size').env_name == 'ASSOC_LOG_QUEUE_SIZE'


def test_defaults_without_any_source():
    """With no sources, every value is its schema default."""
    s = resolve(env={})
    for sp in all_specs():
        assert s.as_dict()[sp.name] == sp.default


def test_precedence_explicit_yaml_env_default():
    """Explicit > YAML > environment > default, per setting."""
    env = {'TRANSFORMER_LOG_EMBED_DIM': '64', 'CONFIDENCE_THRESHOLD': '0.3',
           'ASSOC_LOG_QUEUE_SIZE': '7', 'DIAG': '0'}
    yaml_values = {'log_embed_dim': 128, 'confidence_threshold': 0.2}
    s = resolve({'log_embed_dim': 512}, yaml_values, env)
    assert s.recorder.log_embed_dim == 512           # explicit wins
    assert s.tracker.confidence_threshold == 0.2     # YAML over env
    assert s.recorder.log_queue_size == 7            # env over default
    assert s.tracker.diag is False                   # env over default (bool)
    assert s.recorder.log_max_bytes == 0             # default


def test_invalid_env_value_names_variable_and_range():
    """A bad environment value names the variable and the accepted range."""
    with pytest.raises(ConfigError) as err:
        resolve(env={'TRANSFORMER_LOG_EMBED_DIM': '-3'})
    assert 'TRANSFORMER_LOG_EMBED_DIM' in str(err.value)
    assert 'int in [0, 8192]' in str(err.value)


def test_non_numeric_value_is_rejected_with_type():
    """A value of the wrong type names the setting and the expected type."""
    with pytest.raises(ConfigError, match=r'CONFIDENCE_THRESHOLD.*float in \[0, 1\]'):
        resolve(env={'CONFIDENCE_THRESHOLD': 'high'})


def test_yaml_value_out_of_range_names_parameter():
    """An out-of-range YAML value names the parameter (not the env variable)."""
    with pytest.raises(ConfigError, match=r'YAML parameter log_queue_size=0 is out of range'):
        resolve(yaml_values={'log_queue_size': 0}, env={})


def test_unknown_setting_is_an_error():
    """Misspelled settings are reported, not silently ignored."""
    with pytest.raises(ConfigError, match='log_embed_dimm'):
        resolve({'log_embed_dimm': 3}, env={})


@pytest.mark.parametrize('raw,value', [('1', True), ('true', True), ('YES', True), ('on', True),
                                       ('0', False), ('false', False), ('no', False),
                                       ('off', False), ('', False), (' True ', True)])
def test_bool_parsing(raw, value):
    """Boolean variables accept 1/0, true/false, yes/no, on/off, any case."""
    assert resolve(env={'APPEAR_MEMORY_ENABLE': raw}).memory.appear_memory_enable is value


def test_bad_bool_is_rejected():
    """A word that is not a boolean is an error naming the variable."""
    with pytest.raises(ConfigError, match='SEG_ENABLE.*boolean'):
        resolve(env={'SEG_ENABLE': 'maybe'})


def test_nan_float_is_rejected():
    """NaN is not a valid float setting."""
    with pytest.raises(ConfigError, match='finite'):
        resolve(env={'ASSOC_LOG_MIN_FREE_MB': 'nan'})


def test_dataclass_validates_on_construction():
    """Constructing a config directly with a bad value fails too."""
    with pytest.raises(ConfigError, match='log_sync_period_s'):
        RecorderConfig(log_sync_period_s=-1.0)


def test_load_yaml_plain_mapping(tmp_path):
    """A plain mapping YAML file gives its keys."""
    path = tmp_path / 'p.yaml'
    path.write_text('log_embed_dim: 64\nlog_dir: /tmp/x\n')
    assert load_yaml(path) == {'log_embed_dim': 64, 'log_dir': '/tmp/x'}


def test_load_yaml_ros_parameters_form(tmp_path):
    """The ROS ``node: ros__parameters:`` form gives the inner parameters."""
    path = tmp_path / 'p.yaml'
    path.write_text('tracker_node:\n  ros__parameters:\n    log_embed_dim: 32\n    diag: false\n')
    values = load_yaml(path)
    assert values == {'log_embed_dim': 32, 'diag': False}
    assert resolve(yaml_values=values, env={}).recorder.log_embed_dim == 32


def test_load_yaml_rejects_non_mapping(tmp_path):
    """A YAML list at top level is a clear error."""
    path = tmp_path / 'p.yaml'
    path.write_text('- 1\n- 2\n')
    with pytest.raises(ConfigError, match='mapping'):
        load_yaml(path)
