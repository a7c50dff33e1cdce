"""Persistence: one ``Store`` protocol (``store.base``), one SQLAlchemy implementation chosen by
URL (``store.sql``). Nothing is imported here, so reading the protocol costs no SQLAlchemy."""
