"""A valued stock report."""


def line_total(item):
    return float(item.unit_price) * item.quantity


def format_money(amount):
    return f"${amount:,.2f}"


def total_value(inventory):
    """The value of everything in stock."""
    return sum(line_total(item) for item in inventory.items())


def stock_report(inventory):
    lines = []
    for item in inventory.items():
        value = format_money(line_total(item))
        lines.append(f"{item.sku:<8} {item.name:<20} {item.quantity:>5} {value:>12}")
    lines.append(f"{'TOTAL':<35} {format_money(total_value(inventory)):>12}")
    return "\n".join(lines)
