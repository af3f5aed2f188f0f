"""email_attachment_cleanup function: handler entry point `email_attachment_cleanup.handler.handler`."""
