"""The on-call SNS topic every alarm targets, encrypted with a key CloudWatch may use (else alarms drop silently)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components._options import child
from infra import iam

# The account keeps full control of the key through IAM, spelled out so no wildcard action appears.
KEY_ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:CreateGrant", "kms:Decrypt", "kms:DeleteAlias",
    "kms:DescribeKey", "kms:DisableKey", "kms:DisableKeyRotation", "kms:EnableKey", "kms:EnableKeyRotation",
    "kms:Encrypt", "kms:GenerateDataKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListAliases",
    "kms:ListGrants", "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:ReEncryptFrom", "kms:ReEncryptTo",
    "kms:RetireGrant", "kms:RevokeGrant", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource",
    "kms:UpdateAlias", "kms:UpdateKeyDescription",
]


@dataclass(frozen=True, kw_only=True)
class AlarmTopicArgs:
    topic_name: str
    account_id: pulumi.Input[str]
    emails: tuple[str, ...] = ()
    """Each address gets an email subscription it must confirm."""
    key_deletion_window_days: int = 30


class AlarmTopic(pulumi.ComponentResource):
    key: aws.kms.Key
    topic: aws.sns.Topic

    def __init__(self, name: str, args: AlarmTopicArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:observability:AlarmTopic", name, None, opts)
        root = pulumi.Output.concat("arn:aws:iam::", args.account_id, ":root")
        key_policy = iam.document([
            {"Sid": "AccountAdministersKey", "Effect": "Allow", "Principal": {"AWS": root},
             "Action": KEY_ADMIN_ACTIONS, "Resource": "*"},  # in a key policy "*" means this key
            {"Sid": "AlarmServicesEncrypt", "Effect": "Allow",
             "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}}},
        ])
        self.key = aws.kms.Key(f"{name}-key", description=f"Encrypts the {args.topic_name} alarm topic",
                               enable_key_rotation=True, deletion_window_in_days=args.key_deletion_window_days,
                               policy=key_policy, opts=child(self))
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/{args.topic_name}", target_key_id=self.key.key_id,
                      opts=child(self))
        self.topic = aws.sns.Topic(f"{name}-topic", name=args.topic_name, kms_master_key_id=self.key.arn,
                                   opts=child(self))
        aws.sns.TopicPolicy(f"{name}-topic-policy", arn=self.topic.arn, policy=iam.document([{
            "Sid": "AlarmsPublish", "Effect": "Allow",
            "Principal": {"Service": ["cloudwatch.amazonaws.com", "events.amazonaws.com"]},
            "Action": "sns:Publish", "Resource": self.topic.arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": args.account_id}},
        }]), opts=child(self))
        for i, email in enumerate(args.emails):
            aws.sns.TopicSubscription(f"{name}-email-{i}", topic=self.topic.arn, protocol="email", endpoint=email,
                                      opts=child(self))
        self.register_outputs({"topic_arn": self.topic.arn})

    @property
    def arn(self) -> pulumi.Output[str]:
        return self.topic.arn
