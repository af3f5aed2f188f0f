"""user_link_cleanup function: handler entry point `user_link_cleanup.handler.handler`."""
