"""Restocking alerts."""


def low_stock(inventory, threshold):
    """Items with fewer than `threshold` units left, fewest first."""
    return sorted(
        (item for item in inventory.items() if item.quantity <= threshold),
        key=lambda item: item.quantity,
    )
