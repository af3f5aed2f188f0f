"""The typed configuration: both stack files load, and wrong values fail with one message naming key, stack and fix."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import ConfigError, load, raw_values
from plan.evaluate import read_stack_config


def stack_values(stack: str) -> dict[str, Any]:
    _, config, _ = read_stack_config(stack)
    return {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("macro-infra:")}


def load_with(stack: str, **overrides: Any) -> Any:
    values = stack_values(stack)
    for dotted, value in overrides.items():
        section, _, key = dotted.partition("__")
        if key:
            raw = json.loads(values.get(section, "{}"))
            raw[key] = value
            values[section] = json.dumps(raw)
        else:
            values[section] = value if isinstance(value, str) else json.dumps(value)
    return load(stack, "us-east-1", raw_values(values.get))


def test_both_stack_files_load_and_differ_on_purpose() -> None:
    dev, prod = load_with("dev"), load_with("prod")
    assert (dev.environment, prod.environment) == ("dev", "prod")
    assert (dev.protect, prod.protect) == (False, True)
    assert (dev.search.data_nodes, prod.search.data_nodes) == (1, 3)
    assert (dev.search.zone_awareness, prod.search.zone_awareness) == (False, True)
    assert (dev.network.nat_gateways, prod.network.nat_gateways) == ("single", "perAz")
    assert (dev.storage.transfer_acceleration, prod.storage.transfer_acceleration) == (False, True)
    assert (dev.tables.point_in_time_recovery, prod.tables.point_in_time_recovery) == (False, True)
    assert (dev.database.multi_az, prod.database.multi_az) == (False, True)
    assert (dev.secrets.recovery_window_days, prod.secrets.recovery_window_days) == (0, 30)
    assert dev.log_retention_days < prod.log_retention_days == 365


def test_every_differing_setting_is_written_in_both_files() -> None:
    dev, prod = stack_values("dev"), stack_values("prod")
    assert set(dev) == set(prod), "a top-level setting is written in one stack file only"
    for section in dev:
        d, p = json.loads(dev[section]) if dev[section][:1] in "{[" else dev[section], (
            json.loads(prod[section]) if prod[section][:1] in "{[" else prod[section])
        if isinstance(d, dict):
            assert set(d) == set(p), f"{section}: keys differ between Pulumi.dev.yaml and Pulumi.prod.yaml"


@pytest.mark.parametrize(("override", "message"), [
    ({"search__dataNodes": 4},
     "macro-infra:search.dataNodes must be a multiple of search.zoneCount (3) when zone awareness is on"),
    ({"search__zoneCount": 2, "search__dataNodes": 3}, "macro-infra:search.dataNodes must be even"),
    ({"search__instanceType": "t2.small.search"}, "has no encryption at rest"),
    ({"search__masterCount": 4}, "macro-infra:search.masterCount must be odd"),
    ({"search__dataNodez": 3}, "macro-infra:search.dataNodez is not a known setting"),
    ({"network__cidr": "10.0.0.0/8"}, "macro-infra:network.cidr must be a private IPv4 /16"),
    ({"network__natGateways": "many"}, "macro-infra:network.natGateways must be one of single, perAz"),
    ({"secrets__recoveryWindowDays": 3}, "macro-infra:secrets.recoveryWindowDays must be 0 or between 7 and 30"),
    ({"secrets__recoveryWindowDays": 0}, "macro-infra:secrets.recoveryWindowDays must be at least 7 in prod"),
    ({"protect": False}, "macro-infra:protect must be true in prod"),
    ({"logRetentionDays": 10}, "macro-infra:logRetentionDays must be one of CloudWatch's periods"),
    ({"environment": "staging"}, "macro-infra:environment must be dev or prod"),
    ({"cache__nodes": 1}, "macro-infra:cache.nodes must be at least 2 in prod"),
    ({"database__deletionProtection": False}, "macro-infra:database.deletionProtection"),
    ({"database__maxAllocatedStorageGb": 50}, "macro-infra:database.maxAllocatedStorageGb must be at least"),
    ({"storage__corsOrigins": ["*"]}, "macro-infra:storage.corsOrigins has '*'"),
    ({"storage__drRegion": "us-east-1"}, "macro-infra:storage.drRegion must differ from the primary region"),
    ({"alarms__emails": ["not-an-address"]}, "macro-infra:alarms.emails has 'not-an-address'"),
    ({"dataPlane__functions": {"text_extractor": {"timeoutSeconds": 901}}},
     "macro-infra:dataPlane.functions.text_extractor.timeoutSeconds must be between 1 and 900"),
    ({"dataPlane__functions": {"nope": {}}}, "macro-infra:dataPlane.functions.nope is not a function"),
    ({"dataPlane__deletedItemPollerSchedule": "rate(1 hours)"},
     "macro-infra:dataPlane.deletedItemPollerSchedule must look like"),
    ({"search__dataNodes": "three"}, "macro-infra:search.dataNodes must be a whole number"),
    ({"database__proxy": False}, "macro-infra:database.proxy must be true"),
    ({"alarms__searchFreeStorageMb": 300000},
     "macro-infra:alarms.searchFreeStorageMb must be below the node's storage"),
])
def test_bad_config_names_key_stack_and_fix(override: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_with("prod", **override)
    text = str(caught.value)
    assert message in text
    assert "(stack prod" in text and "Fix:" in text


def test_missing_region_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="aws:region is not set"):
        load("dev", None, raw_values(stack_values("dev").get))


def test_program_reports_config_error_before_any_resource(tmp_path: Any) -> None:
    from plan.evaluate import evaluate_program

    _, config, secrets = read_stack_config("prod")
    config["macro-infra:search"] = json.dumps({"dataNodes": 4, "zoneCount": 3})
    with pytest.raises(ConfigError, match="search.dataNodes must be a multiple"):
        evaluate_program("prod", config, secrets)


def test_a_misspelled_top_level_key_is_an_error_not_silently_ignored() -> None:
    from plan.evaluate import evaluate_program

    _, config, secrets = read_stack_config("dev")
    config["macro-infra:netwrok"] = json.dumps({"cidr": "10.9.0.0/16"})
    with pytest.raises(ConfigError, match=r"macro-infra:netwrok is not a known setting \(stack dev\).*"
                                          r"did you mean macro-infra:network\?"):
        evaluate_program("dev", config, secrets)
