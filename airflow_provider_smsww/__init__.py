"""Apache Airflow provider for Openapi's SMS Worldwide gateway.

Importing this package is cheap on purpose (DAG files import it at parse time): the hook, operator,
sensor, trigger and notifier live in their own modules and load their HTTP and phone-number machinery
only when a task runs.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

CONN_TYPE = "smsww"
DEFAULT_CONN_ID = "smsww_default"


def get_provider_info() -> dict[str, Any]:
    """What Airflow's ProvidersManager reads through the ``apache_airflow_provider`` entry point."""
    return {
        "package-name": "airflow-provider-smsww",
        "name": "SMS Worldwide (Openapi)",
        "description": "Certified SMS through Openapi's SMS Worldwide gateway: dry-run gated sending, "
        "delivery sensing (poke, reschedule, deferrable) and failure notifications.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "SMS Worldwide (Openapi)",
                "external-doc-url": "https://console.openapi.com/apis/sms",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "SMS Worldwide (Openapi)",
                "python-modules": ["airflow_provider_smsww.hooks.smsww"],
            }
        ],
        "operators": [
            {
                "integration-name": "SMS Worldwide (Openapi)",
                "python-modules": [
                    "airflow_provider_smsww.operators.smsww",
                    "airflow_provider_smsww.operators.approval",  # Airflow 3.1+ to use; imports on 3.0
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": "SMS Worldwide (Openapi)",
                "python-modules": ["airflow_provider_smsww.sensors.smsww"],
            }
        ],
        "triggers": [
            {
                "integration-name": "SMS Worldwide (Openapi)",
                "python-modules": [
                    "airflow_provider_smsww.triggers.smsww",
                    "airflow_provider_smsww.triggers.send_wait",
                    "airflow_provider_smsww.triggers.approval",  # Airflow 3.1 and 3.2 only
                ],
            }
        ],
        "notifications": ["airflow_provider_smsww.notifications.smsww.SmsWwNotifier"],
        "connection-types": [
            {
                "hook-class-name": "airflow_provider_smsww.hooks.smsww.SmsWwHook",
                "hook-name": "SMS Worldwide (Openapi)",
                "connection-type": CONN_TYPE,
                "ui-field-behaviour": {
                    # Port stays visible: Airflow 3.3's Test button sends the stored port (0 when empty) and
                    # the API refuses a test whose port differs from the stored connection's.
                    "hidden-fields": ["schema"],
                    "relabeling": {"login": "Account email", "password": "Bearer token", "host": "API host"},
                    "placeholders": {
                        "host": "https://sms.openapi.com (leave empty for the default)",
                        "port": "443, or the port in the API host URL (Airflow's Test button needs it)",
                        "login": "only to mint tokens: the account email",
                        "password": "a token with the sms.openapi.com scopes",
                    },
                },
                "conn-fields": {
                    "api_key": {
                        "label": "API key",
                        "description": "With the account email, mints tokens through Openapi OAuth "
                        "instead of using a fixed token.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "sandbox": {
                        "label": "Use Openapi's test hosts",
                        "description": "test.sms.openapi.com and test.oauth.openapi.com",
                        "schema": {"type": ["boolean", "null"]},
                    },
                    "oauth_host": {
                        "label": "OAuth host",
                        "description": "Override for the token service (the embedded sandbox serves both).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "receipts_url": {
                        "label": "Receipts URL",
                        "description": "Switches delivery receipts on: where the gateway reaches this "
                        "Airflow's API server, ending in /smsww/receipts (docs/receipts.md).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "receipts_secret": {
                        "label": "Receipts secret",
                        "description": "At least 32 random characters: each message's receipt credential "
                        "is made with it.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "receipts_asset": {
                        "label": "Receipts asset",
                        "description": "The asset each receipt becomes an event of (default smsww_receipts).",
                        "schema": {"type": ["string", "null"]},
                    },
                },
            }
        ],
    }
