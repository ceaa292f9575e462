"""A reference webhook receiver for Qala subscriptions: verify, de-duplicate, keep in order.

It is what a city system's endpoint needs to do with the hub's deliveries, in one small app:

1. verify the Standard Webhooks signature over the *raw* body with the ``standardwebhooks`` library (a tampered
   body, a wrong secret or a timestamp more than five minutes off answers 401 and is not stored);
2. de-duplicate by ``webhook-id``: the hub delivers at least once, and a retry carries the same id;
3. answer 2xx only once the changes are stored, so the hub moves on only past what is safe here.

    python -m examples.receiver --port 9100 --secret "$SECRET" --store var/receiver.ndjson

The tests and the README use it; ``--fail-ratio`` and ``--slow-seconds`` make it misbehave on purpose.
"""

from examples.receiver.app import ReceiverConfig, create_receiver

__all__ = ["ReceiverConfig", "create_receiver"]
