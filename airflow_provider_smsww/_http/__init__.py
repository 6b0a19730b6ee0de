"""The HTTP layer under :class:`~airflow_provider_smsww.hooks.smsww.SmsWwHook`: the sync and async
clients (:mod:`.client`) over one request plan, retry decision and retry loop (:mod:`.retry`), the shared
rate limiter (:mod:`.ratelimit`), the API's answers and errors (:mod:`.responses`) and Openapi OAuth
(:mod:`.auth`, whose calls the same :mod:`.retry` retries). No Airflow import; private (only ``hooks/``
imports it, which the layout test checks), so that the hook is the provider's one API.
"""
