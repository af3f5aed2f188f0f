"""Document object keys: ``{urlencoded user}/{document}/{version}.{ext}`` in the document bucket.

The user id is percent-encoded in the key (``macro|a@b.com`` -> ``macro%7Ca%40b.com``) because it may contain
characters S3 tooling treats specially; ``document_prefix`` builds the same encoding for listing and deleting.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote


class InvalidKey(ValueError):
    """The object key does not have the document key shape; the message names the key."""


@dataclass(frozen=True)
class DocumentKey:
    user_id: str
    """Decoded owner id."""
    document_id: str
    version: str
    """Version id, ``converted`` for converted PDFs, or the BOM id for DOCX uploads."""
    extension: str
    """As written in the key (not lower-cased): compare with ``.lower()``."""

    @property
    def prefix(self) -> str:
        return document_prefix(self.user_id, self.document_id)


def parse_document_key(key: str) -> DocumentKey:
    """Split a key into its parts; exactly three non-empty segments and a non-empty version and extension."""
    parts = key.split("/")
    if len(parts) != 3 or not all(parts):
        raise InvalidKey(f"object key {key!r} is not {{user}}/{{document}}/{{version}}.{{ext}}")
    user, document_id, filename = parts
    version, dot, extension = filename.rpartition(".")
    if not dot or not version or not extension:
        raise InvalidKey(f"object key {key!r} has no {{version}}.{{ext}} file name")
    user_id = unquote(user)
    if not user_id.strip() or "/" in user_id:
        raise InvalidKey(f"object key {key!r} has an invalid user segment")
    return DocumentKey(user_id=user_id, document_id=document_id, version=version, extension=extension)


def document_prefix(user_id: str, document_id: str) -> str:
    """The key prefix (with trailing slash) under which every version of a document is stored."""
    if not user_id or not document_id or "/" in document_id:
        raise InvalidKey(f"cannot build a document prefix from user {user_id!r} and document {document_id!r}")
    return f"{quote(user_id, safe='')}/{document_id}/"
