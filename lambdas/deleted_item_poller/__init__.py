"""deleted_item_poller function: handler entry point `deleted_item_poller.handler.handler`."""
