"""Backing stores: where each category of personal data lives, and how to read it by subject."""

from stores.config import StoreConfig, StoresConfig, StoresError, load_stores

__all__ = ["StoreConfig", "StoresConfig", "StoresError", "load_stores"]
