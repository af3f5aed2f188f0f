"""delete_chat function: handler entry point `delete_chat.handler.handler`."""
