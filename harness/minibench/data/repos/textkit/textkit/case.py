"""Conversions between snake_case and camelCase."""
import re


def snake_case(name):
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return re.sub(r"[\s\-]+", "_", name).lower()


def camel_case(name):
    head, *rest = re.split(r"[_\s\-]+", name.strip("_"))
    return head.lower() + "".join(part[:1].upper() + part[1:].lower() for part in rest)
