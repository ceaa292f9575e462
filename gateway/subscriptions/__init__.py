"""Subscriptions: city systems are told about changes instead of polling for them.

The change log is the outbox. A subscription (:mod:`.store`) selects types, cities and filters
(:mod:`.selection`) and keeps a change-feed position; a delivery worker (:mod:`.worker`) sends what follows that
position to the subscriber's webhook, signed per Standard Webhooks (:mod:`.signing`), in commit order and at
least once; the event stream (``GET /api/v1/stream``) serves the same changes as Server-Sent Events.
"""
