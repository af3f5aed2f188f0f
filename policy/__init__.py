"""One rule set for the security controls and AWS deploy-time rules: see ``policy.rules`` and ``policy/README.md``.

Importing this package never starts the CrossGuard server; only ``policy/__main__.py`` constructs the PolicyPack.
"""
