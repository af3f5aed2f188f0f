"""An SNS topic encrypted with its own key, which the AWS services that publish to it may use.

The on-call topic admits CloudWatch and EventBridge (a key CloudWatch cannot use drops alarms silently); the SES
bounce and complaint topics admit SES. The topic policy limits publishers to this account (``aws:SourceAccount``); the
key policy uses AWS's documented statement for service publishers, which has no condition.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components._options import child, stateful
from infra import iam

ALARM_PUBLISHERS = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


@dataclass(frozen=True, kw_only=True)
class EncryptedTopicArgs:
    topic_name: str
    account_id: pulumi.Input[str]
    publishers: tuple[str, ...] = ALARM_PUBLISHERS
    """Service principals allowed to publish (and to use the key for it)."""
    emails: tuple[str, ...] = ()
    """Each address gets an email subscription it must confirm."""
    key_deletion_window_days: int = 30
    protect: bool = False
    """Protect and retain the key (prod)."""


class EncryptedTopic(pulumi.ComponentResource):
    key: aws.kms.Key
    topic: aws.sns.Topic

    def __init__(self, name: str, args: EncryptedTopicArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:messaging:EncryptedTopic", name, None, opts)
        self._name = name
        # AWS's documented statement for services publishing to an encrypted topic (SNS developer guide, "Enable
        # compatibility between event sources from AWS services and encrypted topics"): the service principal, the
        # data-key and decrypt actions, no condition. A condition the service's KMS call does not carry would make
        # every alarm action fail silently; the topic policy keeps publishing limited to this account. The guide's
        # kms:GenerateDataKey* is narrowed to the GenerateDataKey SNS calls (no wildcard actions in our policies).
        key_policy = iam.key_policy(args.account_id, [
            {"Sid": "PublishersEncrypt", "Effect": "Allow", "Principal": {"Service": list(args.publishers)},
             "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*"},
        ])
        self.key = aws.kms.Key(f"{name}-key", description=f"Encrypts the {args.topic_name} topic",
                               enable_key_rotation=True, deletion_window_in_days=args.key_deletion_window_days,
                               policy=key_policy, opts=stateful(self, args.protect))
        aws.kms.Alias(f"{name}-key-alias", name=f"alias/{args.topic_name}", target_key_id=self.key.key_id,
                      opts=child(self))
        self.topic = aws.sns.Topic(f"{name}-topic", name=args.topic_name, kms_master_key_id=self.key.arn,
                                   opts=child(self))
        aws.sns.TopicPolicy(f"{name}-topic-policy", arn=self.topic.arn, policy=iam.document([{
            "Sid": "ServicesPublish", "Effect": "Allow", "Principal": {"Service": list(args.publishers)},
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
