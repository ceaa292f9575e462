"""What the HTTP benches share: uvicorn servers, the hub's set-up, and wrk as the load generator.

Not a bench itself (``make bench`` runs ``bench/*.py``, not this folder). The scripts import it as
``bench.harness`` after putting the clone on the import path, as each of them does first.
"""
