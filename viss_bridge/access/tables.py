"""The access tables: connections, permissions, requests, usage, restrictions, audit.

All live in the bridge's database next to the dataset store, so a permission
use and its usage entry commit in one transaction (SQLite or PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, ForeignKey, Index, Integer, MetaData, String, Table,
                        Text)

metadata = MetaData()

_id = BigInteger().with_variant(Integer, "sqlite")

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(255), primary_key=True),  # X-Road id: LV/GOV/CODE[/SUBSYSTEM]
    Column("name", String(255), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The first, simple permission table (client, dataset). Kept only so that old
# databases can be migrated into ``permissions``; nothing writes it any more.
client_permissions = Table(
    "client_permissions",
    metadata,
    Column("client_id", String(255), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("dataset", String(64), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Index("ux_client_permissions", "client_id", "dataset", unique=True),
)

# A connection's X.509 certificates (several during a key rotation), pinned by SHA-256 fingerprint.
client_certificates = Table(
    "client_certificates",
    metadata,
    Column("fingerprint", String(64), primary_key=True),  # SHA-256 of the DER, lowercase hex
    Column("client_id", String(255), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("subject", String(1024), nullable=False),
    Column("issuer", String(1024), nullable=False),
    Column("serial", String(128), nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("pem", Text, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
    Index("ix_client_certificates_client", "client_id"),
)

permissions = Table(
    "permissions",
    metadata,
    Column("number", String(40), primary_key=True),
    Column("client_id", String(255), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("dataset", String(64), nullable=False),
    Column("purpose", String(1000), nullable=False),
    Column("legal_basis", String(1000), nullable=False),
    # True: the legal basis is a legal obligation, which overrides a person's restriction.
    Column("legal_obligation", Boolean, nullable=False, default=False),
    Column("fields", Text, nullable=True),  # JSON list of readable top-level fields; NULL: all fields
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_to", DateTime(timezone=True), nullable=True),
    Column("quota", BigInteger, nullable=True),  # NULL: unlimited
    Column("used", BigInteger, nullable=False, default=0),
    Column("status", String(16), nullable=False, default="active"),  # active | revoked
    Column("request_id", String(40), nullable=True),
    Column("granted_by", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_by", String(255), nullable=True),
    Column("revoked_reason", String(1000), nullable=True),
    Index("ix_permissions_client_dataset", "client_id", "dataset"),
)

access_requests = Table(
    "access_requests",
    metadata,
    Column("request_id", String(40), primary_key=True),
    Column("client_id", String(255), nullable=False),
    Column("dataset", String(64), nullable=False),
    Column("fields", Text, nullable=True),
    Column("purpose", String(1000), nullable=False),
    Column("legal_basis", String(1000), nullable=False),
    Column("legal_obligation", Boolean, nullable=False, default=False),
    Column("valid_to", DateTime(timezone=True), nullable=True),
    Column("quota", BigInteger, nullable=True),
    Column("status", String(16), nullable=False),  # pending | approved | rejected
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("decided_by", String(255), nullable=True),
    Column("reason", String(1000), nullable=True),
    Column("permission_number", String(40), nullable=True),
    Index("ix_access_requests_dataset_status", "dataset", "status"),
)

# The data tracker: one row per person whose record left the bridge in an answer.
usage_entries = Table(
    "usage_entries",
    metadata,
    Column("id", _id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("person", String(64), nullable=False),  # normalised person code (see tracker.person_key)
    Column("client_id", String(255), nullable=False),
    Column("dataset", String(64), nullable=False),
    Column("purpose", String(1000), nullable=True),
    Column("permission_number", String(40), nullable=True),
    Column("user_id", String(255), nullable=True),
    Column("message_id", String(255), nullable=True),
    Index("ix_usage_entries_person", "person", "id"),
    sqlite_autoincrement=True,
)

restrictions = Table(
    "person_restrictions",
    metadata,
    Column("id", _id, primary_key=True, autoincrement=True),
    Column("person", String(64), nullable=False),
    Column("dataset", String(64), nullable=False),  # the dataset the person named (shown back to them)
    # The register (subject domain) the restriction covers: the manifest's ``register``, by default the
    # dataset name. Every dataset publishing that register honours it (a copy, replica or live view).
    # NULL only in rows written before the column existed (read as the dataset name).
    Column("register", String(255), nullable=True),
    Column("reason", String(1000), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("lifted_at", DateTime(timezone=True), nullable=True),
    Column("lifted_by", String(255), nullable=True),
    Index("ix_person_restrictions_person", "person", "dataset"),
    sqlite_autoincrement=True,
)

access_audit = Table(
    "access_audit",
    metadata,
    Column("id", _id, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("action", String(64), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("object_kind", String(32), nullable=False),
    Column("object_id", String(255), nullable=False),
    Column("details", Text, nullable=False),
    Index("ix_access_audit_object", "object_id"),
    sqlite_autoincrement=True,
)
