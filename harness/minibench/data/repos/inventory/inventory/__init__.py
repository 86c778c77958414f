"""Stock keeping for a small shop."""
from inventory.errors import InventoryError, UnknownItem
from inventory.models import Item
from inventory.report import stock_report, total_value
from inventory.store import Inventory

__all__ = ["Inventory", "InventoryError", "Item", "UnknownItem", "stock_report", "total_value"]
