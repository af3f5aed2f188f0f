"""Bulk upload function: handler entry point `bulk_upload.handler.handler`."""
