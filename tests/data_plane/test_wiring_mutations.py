"""Mutation proof: change one thing in the program's records and a named wired test fails, for the right reason.

Each case copies the dev stack's records, edits the inputs of one record the way a rename or a forgotten line would
(an env var renamed, a grant removed, a pattern or filter that stops matching, a table key renamed, a batch size the
timeout cannot hold, a DLQ unhooked, batch item failures ignored), builds the world from the copy and runs the body of
a test that passes on the real records (``test_wired_handlers.py``, ``test_redrive.py``). The test must fail, and the
world's timeline or the failure must name the drift. dev only: both stacks are wired by the same code, and the
unmutated tests already run on both.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from infra.records import StackRecords
from plan.evaluate import evaluate_stack
from tests.data_plane import test_env_contract as contract
from tests.data_plane import test_redrive as redrive
from tests.data_plane import test_wired_handlers as wired
from tools.harness.world import World

FUNCTION = "aws:lambda/function:Function"


def mutated(type_token: str, name: str, change: Callable[[dict[str, Any]], None]) -> StackRecords:
    """The dev records with ``change`` applied to a deep copy of one record's inputs."""
    records = evaluate_stack("dev")
    target = records.named(name, type_token)
    inputs = copy.deepcopy(target.inputs)
    change(inputs)
    assert inputs != target.inputs, "the mutation changed nothing"
    replaced = tuple(dataclasses.replace(r, inputs=inputs) if r is target else r for r in records.records)
    return StackRecords(stack=records.stack, records=replaced, outputs=records.outputs)


def outcomes(world: World, module: str) -> str:
    return "\n".join(i.outcome for i in world.timeline if i.function == module)


def test_renamed_env_var_fails_the_text_extractor_test(wired_world, pg):
    def rename(inputs: dict[str, Any]) -> None:
        variables = inputs["environment"]["variables"]
        variables["SEARCH_EVENTS_QUEUE_URL"] = variables.pop("SEARCH_QUEUE_URL")

    world = wired_world(mutated(FUNCTION, "text-extractor-function", rename))
    with pytest.raises(AssertionError):
        wired.test_text_extractor_indexes_a_new_document_and_ignores_temp_files(world, pg)
    assert "SEARCH_QUEUE_URL is required" in outcomes(world, "text_extractor")


def test_removed_grant_fails_the_text_extractor_test(wired_world, pg):
    def drop_get_object_version(inputs: dict[str, Any]) -> None:
        policy = json.loads(inputs["policy"])
        for statement in policy["Statement"]:
            if "s3:GetObjectVersion" in statement["Action"]:
                statement["Action"].remove("s3:GetObjectVersion")
        inputs["policy"] = json.dumps(policy)

    policy = "text-extractor-access-policy"
    world = wired_world(mutated("aws:iam/rolePolicy:RolePolicy", policy, drop_get_object_version))
    with pytest.raises(AssertionError):
        wired.test_text_extractor_indexes_a_new_document_and_ignores_temp_files(world, pg)
    assert {c.denied.action for c in world.denied_calls() if c.denied} == {"s3:GetObjectVersion"}
    assert "AccessDenied" in outcomes(world, "text_extractor")


def test_event_pattern_that_stops_matching_fails_the_text_extractor_test(wired_world, pg):
    def retarget(inputs: dict[str, Any]) -> None:
        pattern = json.loads(inputs["eventPattern"])
        pattern["detail-type"] = ["Object Uploaded"]  # not what S3 emits
        inputs["eventPattern"] = json.dumps(pattern)

    world = wired_world(mutated("aws:cloudwatch/eventRule:EventRule", "text-extractor-trigger-rule", retarget))
    with pytest.raises(AssertionError):
        wired.test_text_extractor_indexes_a_new_document_and_ignores_temp_files(world, pg)
    assert outcomes(world, "text_extractor") == ""  # never delivered


def test_notification_suffix_that_stops_matching_fails_the_docx_unzip_test(wired_world, pg):
    def suffix(inputs: dict[str, Any]) -> None:
        inputs["lambdaFunctions"][0]["filterSuffix"] = ".docm"

    world = wired_world(mutated("aws:s3/bucketNotification:BucketNotification", "docx-upload-notification", suffix))
    with pytest.raises(ValueError):  # the test's unpacking of the one docx_unzip run finds none
        wired.test_docx_unzip_runs_only_for_docx_keys(world, pg)
    assert outcomes(world, "docx_unzip") == ""


def test_renamed_table_key_fails_the_bulk_upload_test(wired_world, pg):
    def rename_key(inputs: dict[str, Any]) -> None:
        inputs["rangeKey"] = "sk"
        for attribute in inputs["attributes"]:
            if attribute["name"] == "SK":
                attribute["name"] = "sk"
        for index in inputs.get("globalSecondaryIndexes") or []:
            for key in index.get("keySchemas") or []:
                if key["attributeName"] == "SK":
                    key["attributeName"] = "sk"

    world = wired_world(mutated("aws:dynamodb/table:Table", "bulk-upload-table", rename_key))
    with pytest.raises(Exception, match="sk|SK|key"):
        wired.test_bulk_upload_consumes_only_extract_uploads(world, pg)


def test_batch_size_beyond_the_timeout_fails_the_delete_chat_test(wired_world, pg):
    def huge_batch(inputs: dict[str, Any]) -> None:
        inputs["batchSize"] = 10000.0
        inputs["maximumBatchingWindowInSeconds"] = 5.0

    world = wired_world(mutated("aws:lambda/eventSourceMapping:EventSourceMapping", "delete-chat-mapping", huge_batch))
    with pytest.raises(ValueError):  # the test's one run is a timed-out one followed by retries
        wired.test_delete_chat_consumes_its_queue(world, pg)
    assert "timed out: delete-chat-dev: a full batch of 10000 records" in outcomes(world, "delete_chat")


def test_unhooked_dlq_fails_the_redrive_test(wired_world, pg):
    def unhook(inputs: dict[str, Any]) -> None:
        del inputs["redrivePolicy"]

    world = wired_world(mutated("aws:sqs/queue:Queue", "delete-chat-handler-queue", unhook))
    with pytest.raises(AssertionError, match="no redrive policy"):  # the poison message would come back for ever
        redrive.test_poison_message_lands_in_the_dlq_after_max_receives(world, pg)


def test_ignored_batch_item_failures_fail_the_redrive_test(wired_world, pg):
    def ignore_failures(inputs: dict[str, Any]) -> None:
        del inputs["functionResponseTypes"]

    world = wired_world(mutated("aws:lambda/eventSourceMapping:EventSourceMapping", "delete-chat-mapping",
                                ignore_failures))
    with pytest.raises(AssertionError):  # the poison message is deleted with its batch: consumed silently
        redrive.test_poison_message_lands_in_the_dlq_after_max_receives(world, pg)
    assert world.messages(world.dlq_url("delete-chat-handler"), delete=False) == []


def test_missing_invoke_permission_fails_the_docx_unzip_test(wired_world, pg):
    def other_source(inputs: dict[str, Any]) -> None:
        inputs["sourceArn"] = inputs["sourceArn"] + "-elsewhere"

    world = wired_world(mutated("aws:lambda/permission:Permission", "docx-unzip-invoke-from-docx-upload", other_source))
    with pytest.raises(ValueError):  # the test's one docx_unzip run is a refused one
        wired.test_docx_unzip_runs_only_for_docx_keys(world, pg)
    assert "not invoked: no recorded permission lets s3.amazonaws.com invoke" in outcomes(world, "docx_unzip")


def test_renamed_env_var_fails_the_env_contract_test():
    """The program renames a tunable its handler reads with a default: the handler silently falls back on the
    default, so a handler test need not notice; the contract check fails, naming the function and the variable."""
    def rename(inputs: dict[str, Any]) -> None:
        variables = inputs["environment"]["variables"]
        variables["USER_LINK_MAX_AGE"] = variables.pop("USER_LINK_MAX_AGE_HOURS")

    records = mutated(FUNCTION, "user-link-cleanup-function", rename)
    with pytest.raises(AssertionError, match=r"user-link-cleanup-function \(user-link-cleanup-dev\) reads "
                                             r"USER_LINK_MAX_AGE_HOURS \(user_link_cleanup\.handler:\d+\)"):
        contract.assert_environment_covers_reads(records)
