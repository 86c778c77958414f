"""Load stock from CSV text: a header line, then sku,name,unit_price,quantity per line."""
from inventory.store import Inventory


def load_csv(text):
    inventory = Inventory()
    for line in text.strip().splitlines()[1:]:
        sku, name, price, quantity = line.split(",")
        inventory.add(sku, name, price, int(quantity))
    return inventory
