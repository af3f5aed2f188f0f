"""Shared helpers of the program: typed configuration, naming and IAM policy documents. No resources live here."""
