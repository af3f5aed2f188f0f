"""email_suppression function: handler entry point `email_suppression.handler.handler`."""
