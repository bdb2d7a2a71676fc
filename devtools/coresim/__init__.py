"""A real HTTP server that plays Pomerium Core's ConfigService (Connect, JSON), written
from Pomerium's OpenAPI document and ``apps/pomerium/configservice_contract``, never from the
portal's client.

``devtools.coresim.simulator.CoreSimulator`` is the entry point (its module docstring is
the API); ``handler`` is the wire, ``state`` the records, ``ppl`` Core's PPL compiler and
the evaluator, ``faults`` fault injection.
"""

from devtools.coresim.simulator import CoreSimulator

__all__ = ["CoreSimulator"]
