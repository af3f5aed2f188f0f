"""Offline evaluation of the Pulumi program under mocks: every resource of a stack, recorded for tests, rules and the
offline plan."""
