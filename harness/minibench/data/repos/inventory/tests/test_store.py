import pytest

from inventory import Inventory, UnknownItem


def make():
    inv = Inventory()
    inv.add("A1", "apple", "0.50", 10)
    return inv


def test_add_accumulates():
    inv = make()
    inv.add("A1", "apple", "0.50", 5)
    assert inv.get("A1").quantity == 15


def test_remove_reduces_stock():
    inv = make()
    inv.remove("A1", 4)
    assert inv.get("A1").quantity == 6


def test_unknown_item():
    with pytest.raises(UnknownItem):
        make().remove("ZZ", 1)


def test_quantities_must_be_positive():
    with pytest.raises(ValueError):
        make().add("A1", "apple", "0.50", 0)
