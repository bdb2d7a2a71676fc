"""The dev sign-in proxy in front of an echoing upstream (the proxy tests' own fixtures)."""

from tests.demo.test_proxy import proxy, upstream

__all__ = ["proxy", "upstream"]
