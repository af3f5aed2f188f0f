"""Shared helpers: typed configuration, naming, IAM policy documents, artifact identity and the recorded-resource
types. No resources live here."""
