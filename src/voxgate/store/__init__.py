"""Persistence: one ``Store`` protocol, one SQLAlchemy implementation chosen by URL."""

from voxgate.store.base import CredentialFilter, Store
from voxgate.store.sql import SqlStore, open_store

__all__ = ["CredentialFilter", "SqlStore", "Store", "open_store"]
