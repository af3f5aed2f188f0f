"""The seed's application secrets that no single data store owns: generated keys and externally issued values.

Derived secrets (database, cache and proxy URLs, the OpenSearch password) belong to the components that own those
resources; this component holds the rest under the same ``macro/{stack}/{key}`` pattern. Generated keys come from
pulumi-random (rotate one with ``pulumi up --replace <its RandomPassword URN>``: services read it at start-up).
Externally issued values come from ``pulumi config set --secret``; a stack without them still deploys, leaving the
secret empty until an operator sets the value (the offline plan lists them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components._options import child
from components.secrets import SecretSettings, create_secret, grant_secret_read
from infra import iam

GENERATED_KEYS: Mapping[str, str] = {
    "jwt_secret_key": "JWT signing key",
    "internal_api_key": "Internal service-to-service API key",
    "sync_service_auth_key": "Sync service authentication key",
    "authentication_service_secret_key": "Authentication service key",
    "document_storage_permissions_key": "Document permission JWT key",
}
EXTERNAL_KEYS: Mapping[str, tuple[str, str]] = {
    # secret key: (config key under macro-infra, what it is)
    "fusionauth_client_id": ("fusionauthClientId", "FusionAuth OAuth client id (issued by FusionAuth)"),
    "github_webhook_secret_key": ("githubWebhookSecret", "GitHub webhook verification secret (set in GitHub)"),
    "github_sync_app_pem": ("githubSyncAppPem", "GitHub sync app private key, PEM (issued by GitHub)"),
}


@dataclass(frozen=True, kw_only=True)
class PlatformSecretsArgs:
    settings: SecretSettings
    external_values: Mapping[str, pulumi.Input[str] | None] = field(default_factory=dict)
    """Secret key → value from ``pulumi config --secret``, or None while the operator has not set it."""
    key_length: int = 64


class PlatformSecrets(pulumi.ComponentResource):
    secrets: dict[str, aws.secretsmanager.Secret]

    def __init__(self, name: str, args: PlatformSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("macro:security:PlatformSecrets", name, None, opts)
        unknown = set(args.external_values) - set(EXTERNAL_KEYS)
        if unknown:
            raise ValueError(f"{name}: unknown external secrets {sorted(unknown)}")
        self.args = args
        self.secrets = {}
        for key, description in GENERATED_KEYS.items():
            value = random.RandomPassword(f"{name}-{key}-value", length=args.key_length, special=False,
                                          opts=child(self))
            self.secrets[key] = create_secret(self, f"{name}-{key}", args.settings, key=key, description=description,
                                              value=value.result)
        for key, (_, description) in EXTERNAL_KEYS.items():
            self.secrets[key] = create_secret(self, f"{name}-{key}", args.settings, key=key, description=description,
                                              value=args.external_values.get(key))
        self.register_outputs({f"{k}_arn": s.arn for k, s in self.secrets.items()})

    def grant_read(self, grants: iam.Grants, *keys: str) -> None:
        for key in keys:
            grant_secret_read(grants, self.secrets[key].arn, key, self.args.settings)
