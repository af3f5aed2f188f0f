"""The one structured logger every function uses (service name from ``POWERTOOLS_SERVICE_NAME``)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

logger = Logger()
