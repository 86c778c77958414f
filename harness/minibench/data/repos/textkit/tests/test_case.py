from textkit import camel_case, snake_case


def test_snake_case():
    assert snake_case("parseHttpResponse") == "parse_http_response"


def test_camel_case():
    assert camel_case("parse_http_response") == "parseHttpResponse"
