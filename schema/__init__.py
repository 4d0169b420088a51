"""The GraphQL schema, generated from the catalogue: one field per category of personal data."""

from schema.build import build_schema

__all__ = ["build_schema"]
