"""The shared core: configuration errors name the variable, secrets are cached, keys parse strictly, DB over the URL."""

from __future__ import annotations

import boto3
import pytest
from core import config, db, keys, s3, secrets


def test_env_int_default_value_and_errors(monkeypatch):
    monkeypatch.delenv("EXAMPLE_LIMIT", raising=False)
    assert config.env_int("EXAMPLE_LIMIT", 500) == 500
    monkeypatch.setenv("EXAMPLE_LIMIT", "42")
    assert config.env_int("EXAMPLE_LIMIT", 500) == 42
    monkeypatch.setenv("EXAMPLE_LIMIT", "forty")
    with pytest.raises(config.ConfigError, match="EXAMPLE_LIMIT"):
        config.env_int("EXAMPLE_LIMIT", 500)
    monkeypatch.setenv("EXAMPLE_LIMIT", "-1")
    with pytest.raises(config.ConfigError, match="EXAMPLE_LIMIT must be >= 0"):
        config.env_int("EXAMPLE_LIMIT", 500)


def test_env_str_required_and_default(monkeypatch):
    monkeypatch.delenv("EXAMPLE_BUCKET", raising=False)
    with pytest.raises(config.ConfigError, match="EXAMPLE_BUCKET"):
        config.env_str("EXAMPLE_BUCKET")
    assert config.env_str("EXAMPLE_BUCKET", "fallback") == "fallback"
    monkeypatch.setenv("EXAMPLE_BUCKET", " docs ")
    assert config.env_str("EXAMPLE_BUCKET") == "docs"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("macro%7Cuser%40x.com/doc-1/7.pdf", ("macro|user@x.com", "doc-1", "7", "pdf")),
        ("u/d/converted.pdf", ("u", "d", "converted", "pdf")),
        ("u/d/12.tar.gz", ("u", "d", "12.tar", "gz")),
    ],
)
def test_parse_document_key(key, expected):
    parsed = keys.parse_document_key(key)
    assert (parsed.user_id, parsed.document_id, parsed.version, parsed.extension) == expected


@pytest.mark.parametrize("key", ["", "u/d", "u/d/v/x.pdf", "u//v.pdf", "/d/v.pdf", "u/d/noext", "u/d/.pdf", "u/d/v."])
def test_parse_document_key_rejects_other_shapes(key):
    with pytest.raises(keys.InvalidKey) as err:
        keys.parse_document_key(key)
    assert repr(key) in str(err.value)


def test_document_prefix_round_trips_the_encoded_owner():
    prefix = keys.document_prefix("macro|user@x.com", "doc-1")
    assert prefix == "macro%7Cuser%40x.com/doc-1/"
    assert keys.parse_document_key(prefix + "3.docx").prefix == prefix
    with pytest.raises(keys.InvalidKey):
        keys.document_prefix("u", "a/b")


def test_secret_is_fetched_once_per_cold_start(aws):
    sm = boto3.client("secretsmanager", region_name="us-east-1")
    arn = sm.create_secret(Name="s", SecretString="v1")["ARN"]
    assert secrets.get_secret_string(arn) == "v1"
    sm.put_secret_value(SecretId=arn, SecretString="v2")
    assert secrets.get_secret_string(arn) == "v1"  # cached until the next cold start
    secrets.clear_cache()
    assert secrets.get_secret_string(arn) == "v2"
    with pytest.raises(secrets.SecretError, match="missing-secret"):
        secrets.get_secret_string("arn:aws:secretsmanager:us-east-1:123456789012:secret:missing-secret")


def test_connect_uses_the_secret_url_and_transactions_roll_back(database_secret, pg):
    conn = db.connect()
    try:
        with db.transaction(conn) as cur:
            cur.execute('INSERT INTO "User" (id, email) VALUES (%s, %s)', ("u1", "a@b.c"))
        with pytest.raises(RuntimeError), db.transaction(conn) as cur:
            cur.execute('INSERT INTO "User" (id, email) VALUES (%s, %s)', ("u2", "d@e.f"))
            raise RuntimeError("boom")
    finally:
        conn.close()
    assert pg.query('SELECT id FROM "User" ORDER BY id') == [["u1"]]


def test_db_url_is_empty_for_every_test(db_url, pg):
    assert pg.query('SELECT count(*) FROM "User"') == [[0]]


def test_tls_is_the_default_and_bad_urls_are_named(pg, monkeypatch):
    tls_url = pg.url.replace("sslmode=disable", "sslmode=require")
    # The test server has no TLS: a TLS connection attempt must fail rather than fall back to plaintext.
    with pytest.raises(Exception):  # noqa: B017 - pg8000 raises InterfaceError for a refused TLS upgrade
        db.connect_url(tls_url.split("?")[0])
    with pytest.raises(db.DatabaseConfigError, match="sslmode"):
        db.connect_url(pg.url.replace("disable", "prefer"))
    with pytest.raises(db.DatabaseConfigError, match="scheme"):
        db.connect_url("mysql://u:p@h/db")
    monkeypatch.delenv("DATABASE_SECRET_ARN", raising=False)
    with pytest.raises(config.ConfigError, match="DATABASE_SECRET_ARN"):
        db.connect()


def test_delete_all_versions_on_an_unversioned_bucket(make_bucket):
    """The attachments bucket is unversioned: versions are listed with id "null" and deleting version "null" works."""
    bucket = make_bucket("attachments-unversioned-test")
    client = boto3.client("s3", region_name="us-east-1")
    for key in ("msg1/a.pdf", "msg1/b.png", "msg10/a.pdf"):
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    client.put_object(Bucket=bucket, Key="msg1/a.pdf", Body=b"overwritten")  # unversioned: replaces, no new version
    listed = client.list_object_versions(Bucket=bucket, Prefix="msg1/")
    versions = sorted((v["Key"], v["VersionId"]) for v in listed["Versions"])
    assert versions == [("msg1/a.pdf", "null"), ("msg1/b.png", "null")]
    assert "DeleteMarkers" not in listed

    assert s3.delete_all_versions(bucket, "msg1/a.pdf", exact_key=True) == 1
    assert s3.delete_all_versions(bucket, "msg1/") == 1
    assert s3.delete_all_versions(bucket, "msg1/") == 0  # idempotent
    remaining = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in remaining] == ["msg10/a.pdf"]
    assert "Versions" not in client.list_object_versions(Bucket=bucket, Prefix="msg1/")
