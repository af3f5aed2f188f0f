"""Project tools: the Lambda artifact build and what the Pulumi program needs to know about its output."""
