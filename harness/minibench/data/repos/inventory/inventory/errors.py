"""Errors raised by the inventory."""


class InventoryError(Exception):
    """Base class of every inventory error."""


class UnknownItem(InventoryError, KeyError):
    """No item with that SKU is stocked."""
