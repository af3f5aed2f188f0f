"""Shared data-plane core: configuration, secrets, database, S3 keys and logging for every Lambda in ``lambdas/``.

Runtime code only: never import ``pulumi`` or ``components`` from here.
"""
