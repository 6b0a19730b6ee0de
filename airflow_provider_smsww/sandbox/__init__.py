"""The embedded sandbox: a local emulator of Openapi's Gateway SMS v1.2.7 (and OAuth v2 tokens and wallet).

It answers like the real API (paths, ``{"data": ...}`` envelope, Bearer auth, error codes, encoding and
part counting, prices, credit, blocklisting, the NEW -> PENDING -> final state machine, callbacks), so
DAGs and the client can be tested with no account, no cost and no traffic off the machine. Nothing
outside this package imports it; importing this ``__init__`` is free (no FastAPI/uvicorn import).

Public API
----------
- ``server.run_sandbox(host="127.0.0.1", port=0, *, faults=None, callback_transport=None,
  log_level="warning", **config)``: context manager, uvicorn in a daemon thread; yields a
  ``SandboxHandle`` with ``url``, ``token``, ``conn_json`` (for ``AIRFLOW_CONN_SMSWW_DEFAULT``),
  ``oauth_conn_json`` (email + api_key + ``oauth_host``), ``sandbox``, ``faults``, ``app``, ``runner``,
  ``reset()``, ``wait_for(predicate, timeout)``, ``wallet()``, ``transactions()``, ``token_stats(token)``.
- ``server.in_process_sandbox(**same)``: no socket; yields an ``InProcessSandbox`` (same fields) with
  ``transport`` (for ``SmsWwClient``) and ``async_transport`` (for ``AsyncSmsWwClient``).
- ``app.create_app(sandbox=None, *, faults=None, callback_transport=None, **config) -> FastAPI``.
- ``state.Sandbox(config=None, **config)``: the in-memory gateway and the judge of tests:
  ``messages`` (id -> ``StoredMessage``, dry runs never stored), ``view(message_or_id)`` (the wire
  dict now), ``accepted()``, ``per_recipient()`` (Counter), ``credit`` (EUR float), ``charges``,
  ``dry_runs``, ``blocklisted``, ``requests`` ((method, path, status); 0 = dropped),
  ``callback_attempts`` (``callbacks.CallbackAttempt``), ``tokens`` (token -> ``MintedToken``),
  ``transactions`` (WalletTransaction dicts, oldest first), ``wallet()``, ``wallet_transactions()``,
  ``token_detail(token)``, ``advance()``, ``reset()``.
- ``config.SandboxConfig`` fields: ``token``, ``email``, ``api_key``, ``credit`` (100), ``prices``
  (EUR per part: IT 0.065, ES 0.07, GB 0.045, US 0.01), ``default_price`` (0.08),
  ``min_credit_per_part`` (1), ``penalty_per_part`` (1), ``forbidden_words`` (``("forbiddenword",)``,
  case-insensitive, message or sender), ``pending_after`` (0.2 s), ``delivered_after`` (1.0 s),
  ``listing_lag`` (0 s: how long after storing ``GET /messages`` lists a message), ``date_header``
  (True: the loopback server's ``Date``; the in-process transports send none),
  ``outcomes`` (recipient -> final state), ``clock`` (``time.monotonic``), ``wall_clock``, ``seed``,
  ``token_ttl_default``, ``oauth_envelope`` (False: the spec's unwrapped ``TokenDetail``),
  ``callback_backoff`` (0.05 s), ``callback_timeout``, ``callback_hosts`` (loopback only),
  ``state_file`` (None: memory only; a sqlite path keeps messages, credit, tokens and transactions
  across restarts, see :mod:`.store`).
- ``faults.FaultConfig`` / ``FaultInjector.inject(*specs, path=None, method=None)``; ``smsww-sandbox``
  CLI (``cli.main``); pytest fixtures ``smsww_sandbox`` and ``smsww_sandbox_app`` (``pytest_plugin``).

Magic numbers
-------------
Valid Italian mobiles whose final state is forced (any endpoint but ES): ``+393330000001`` ->
UNDELIVERABLE, ``+393330000002`` -> EXPIRED, ``+393330000003`` -> REJECTED. Every other number is
DELIVERED unless ``outcomes`` says otherwise.

Behaviour and the sandbox's assumptions (where the spec is silent)
-----------------------------------------------------------------
- Errors ``{"code", "message"}`` with the spec's texts: 422 2011 bad E.164, 2013 wrong country (IT/ES),
  2021 sender length, 2024 numeric sender, 2044 forbidden content (dry runs and WW), 2050 forbidden
  content in a real IT/ES send, 403 2020 blocklisted account, 422 1020 OTP length. Assumed codes:
  422 **1000** body problems (bad JSON, missing/ill-typed field, empty or over-255-part text, negative
  skip/limit), 422 **2040** ``failOnMultipleMessages`` with more than one part, 402 **2030**
  insufficient credit, 402 **2035** a minted token's limits used up, 401 code 401, 403 code 403
  (token scope), 404 code 404, 429 code 429.
- Dry run: validated, priced and checked against credit like a real send, answered 201 with a fresh
  id that is never stored (``GET`` on it is 404); nothing charged, counted in ``dry_runs``.
- Prices: IT/ES priced at once (rate of the recipient's country) and charged at acceptance (credit must
  cover it, else 402). WW: ``price``/``totalPrice`` 0 until PENDING (provider acceptance), then the
  country's rate, charged then; accepting needs credit >= 1 EUR x parts.
- Forbidden words in a real send: stored REJECTED with ``blocklisted``/``blocklistedReason``, the
  account blocklisted (every later send 403 2020), charged 1 EUR per part (WW: the stored message shows
  ``price`` 1, the penalty) or the regional price (IT/ES), answered 422. In a dry run: 422 2044 only.
- Responses carry every MessageResponse field; ``blocklistedReason`` is "" when not blocklisted (the spec
  types it as a non-nullable string), ``callback`` is present only when given, echoed as sent
  (header values included, as in the spec's example), ``otp``/``otpOptions`` only for ``POST /otp``.
- Bodies: ``options``, ``callback``, ``callback.headers`` and ``callback.custom`` sent as ``null`` (or
  any non-object) are 422 1000, as are ``skip``/``limit`` given twice or not as plain integers; a
  wrong method is 405 with an ``Allow`` header.
- Callbacks: on each state change after creation (PENDING, then the final state; REJECTED at once for
  blocked content), ``{"data": Message, "custom": {...}}`` (shape unconfirmed), JSON or form; up to
  ``1 + retry`` attempts; loopback hosts only by default. See :mod:`.callbacks`.
- OAuth v2 (HTTP Basic, email + API key): ``POST /tokens`` (``limits``: ``walletAmount``,
  ``walletRequests``, ``totalRequests``), ``GET``/``DELETE /tokens/{token}``, ``GET /wallet``,
  ``GET /wallet/transactions`` (one row per charge, newest first). A token's ``totalRequests`` counts
  every SMS API call it makes; ``walletRequests``/``walletAmount`` count real sends and their price
  (WW: the price it will be charged at PENDING, counted at acceptance). A call past a limit is 402 2035
  before anything is stored or charged. See docs/sandbox.md.
- ``POST /otp``: English text "Your verification code is CODE", sender "OTP MOBILE", WW pricing.

Fault injection
---------------
Header ``X-Sandbox-Fault`` (any path) or ``FaultInjector.inject`` scripts or seeded random rates
(``FaultConfig``: ``rate_5xx``, ``rate_5xx_after``, ``status_5xx``, ``rate_429``, ``retry_after``,
``rate_drop_before``, ``rate_drop_after``, ``latency``, ``paths`` (send paths by default), ``seed``).
Grammar: comma-separated ``500|502|503|504``, ``5xx-after`` (e.g. ``503-after``), ``429[=SECONDS]``,
``drop-before``, ``drop-after``, ``latency=SECONDS``, ``none``. "After" faults store the message first.
Injected faults are logged in ``FaultInjector.log`` (with the stored message id for "after" faults).
"""
