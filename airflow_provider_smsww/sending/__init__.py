"""What :class:`~airflow_provider_smsww.operators.smsww.SmsSendOperator` does, one concern a module,
free of Airflow's task machinery so that it can be tested and benchmarked on its own. Every request
goes through :class:`~airflow_provider_smsww.hooks.smsww.SmsWwHook`.

:mod:`.order` tells the order that keeps money safe, and runs it: local checks (:mod:`.batch`), the
ledger of an earlier try (:mod:`.ledger`), the dry-run gate (:mod:`.gate`), the credit pre-flight
(:mod:`.credit`), the capped sends (:mod:`.bulk` over the hook's
:mod:`~airflow_provider_smsww.hooks.fanout`, the one fan-out the notifier uses too), reconciliation of
unknown outcomes (:mod:`.reconcile`) and the cost summary (:mod:`.cost`).
``docs/operator.md`` tells the guarantees and the window that remains.
"""
