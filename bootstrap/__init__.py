"""The account bootstrap: a second Pulumi project (``bootstrap/Pulumi.yaml``) run once per account."""
