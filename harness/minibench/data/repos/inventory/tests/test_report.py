from decimal import Decimal

from inventory import Inventory, stock_report, total_value


def test_report_lists_items_sorted():
    inv = Inventory()
    inv.add("B2", "bread", "2.00", 1)
    inv.add("A1", "apple", "0.50", 4)
    lines = stock_report(inv).splitlines()
    assert lines[0].startswith("A1") and lines[1].startswith("B2")
    assert lines[-1].startswith("TOTAL") and lines[-1].endswith("$4.00")


def test_total_of_round_prices():
    inv = Inventory()
    inv.add("B2", "bread", "2.00", 3)
    assert total_value(inv) == Decimal("6.00")
