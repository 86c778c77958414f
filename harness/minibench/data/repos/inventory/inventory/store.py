"""The inventory: items by SKU, with their quantities."""
from decimal import Decimal

from inventory.errors import UnknownItem
from inventory.models import Item


class Inventory:
    def __init__(self):
        self._items = {}

    def add(self, sku, name, unit_price, quantity):
        """Receive `quantity` units of an item, creating it on first delivery."""
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        item = self._items.get(sku)
        if item is None:
            item = self._items[sku] = Item(sku, name, Decimal(str(unit_price)), 0)
        item.quantity += quantity
        return item

    def remove(self, sku, quantity):
        """Take `quantity` units of an item out of stock."""
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        item = self.get(sku)
        item.quantity -= quantity
        return item

    def get(self, sku):
        try:
            return self._items[sku]
        except KeyError:
            raise UnknownItem(sku) from None

    def items(self):
        return sorted(self._items.values(), key=lambda item: item.sku)
