"""db_credentials_rotation function: handler entry point `db_credentials_rotation.handler.handler`."""
