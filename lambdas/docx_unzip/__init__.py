"""DOCX unzip function: handler entry point `docx_unzip.handler.handler`."""
