"""Backing stores: where each category of personal data lives, and how to read it by subject."""

from stores.config import StoreConfig, StoresConfig, StoresError, demo_layout, load_stores

__all__ = ["StoreConfig", "StoresConfig", "StoresError", "demo_layout", "load_stores"]
