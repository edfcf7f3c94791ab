"""The sans-I/O core: machine, models, notification parsing, records, invite, switchboard.

It also holds the retry policy.

Nothing in this package performs I/O, reads the time or makes an id: every input carries
its time and its ids, so replaying an invite's inputs reproduces its path. The engine
(:mod:`callflow._client`) performs what the core asks for.
"""

__all__: list[str] = []
