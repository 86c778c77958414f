"""The stocked item."""
from dataclasses import dataclass
from decimal import Decimal


@dataclass
class Item:
    sku: str
    name: str
    unit_price: Decimal
    quantity: int = 0
