"""What :class:`~airflow_provider_smsww.operators.smsww.SmsSendOperator` does, one concern a module,
free of Airflow's task machinery so that it can be tested and benchmarked on its own. Every request
goes through :class:`~airflow_provider_smsww.hooks.smsww.SmsWwHook`.

The order is what keeps money safe:

1. :mod:`.batch`: :func:`~.batch.check_locally` refuses bad input (numbers, sender, text, parts,
   callback) with no request at all, and builds the :class:`~.batch.Batch`.
2. :mod:`.ledger`: on a retry, the recipients an earlier try recorded as accepted are taken out
   (:func:`~.ledger.not_yet_recorded`); they are neither priced nor sent again.
3. :mod:`.gate`: :func:`~.gate.gate` prices every remaining message with ``dryRun`` (free) and refuses
   the whole batch if any message fails, needs too many parts, or the total is over budget.
4. :mod:`.credit`: :func:`~.credit.preflight` refuses the batch unless the account's credit covers the
   estimate (with the account's email and API key); the sends then go through a per-task token the
   gateway caps at the budget (``SmsWwHook.scoped``).
5. :mod:`.bulk`: :func:`~.bulk.send_all` sends for real with a bounded number in flight, writing each
   accepted id to the ledger before that slot sends again.
6. :mod:`.reconcile`: a send whose outcome is unknown (dropped connection, 5xx, an unreadable answer),
   and on a retry every recipient the ledger lacks, is looked up in ``GET /messages`` before anything
   is resent. The try waits and looks again; what stays absent is resent only once it has been absent
   for ``settle_time`` since its send (and a listing that does not prove a real send is never taken
   for one).

``docs/operator.md`` tells the guarantees and the window that remains.
"""
