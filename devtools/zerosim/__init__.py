"""A real HTTP server that plays Pomerium Zero, written from the wire contract
(``docs/zero-api.md``, ``apps/pomerium/contract``), never from the portal's client.

``devtools.zerosim.simulator.ZeroSimulator`` is the entry point; the other modules are its
parts (see its docstring).
"""
