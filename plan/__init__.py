"""Offline evaluation of the Pulumi program under mocks: records every resource of a stack for tests, rules and the plan."""
