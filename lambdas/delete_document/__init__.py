"""delete_document function: handler entry point `delete_document.handler.handler`."""
