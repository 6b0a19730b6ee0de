"""
### SMS-verified approval (Airflow 3.1+)

A release of sensitive data waits for a named approver, who proves who they are with a one-time code
texted to their phone.

`SmsVerifiedApprovalOperator` is Airflow's human-in-the-loop `ApprovalOperator` with one more form
field, `one_time_password`: when the task starts it texts a code to the approver (`POST /otp`), and
`SmsWwNotifier` in `notifiers=` texts them the request's subject and the link to its response page. In
the Airflow UI (Browse, Required Actions) or through the REST API the approver chooses "Approve" and
types the code. A wrong code does not approve: the request is opened again, at most `max_attempts`
times, while the code is valid (`code_valid_for`); then the task fails. "Reject" skips `publish`.

On Airflow 3.0 this file fails to import with "SmsVerifiedApprovalOperator needs Airflow 3.1 or newer".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from airflow_provider_smsww.notifications.smsww import SmsWwNotifier
from airflow_provider_smsww.operators.approval import SmsVerifiedApprovalOperator

APPROVER = "+393331234567"

with DAG(
    dag_id="example_smsww_approval",
    description="Release data only after an SMS-verified approval",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    doc_md=__doc__,
    tags=["smsww", "example"],
) as dag:

    @task
    def prepare_release() -> str:
        return "q3-sales-partners.parquet"

    approve = SmsVerifiedApprovalOperator(
        task_id="approve_release",
        approver=APPROVER,
        subject="Release {{ ti.xcom_pull(task_ids='prepare_release') }} to partners?",
        body="Approve with the code texted to you from OTP MOBILE.",
        # The approver gets a second SMS with the subject and the link to the response page
        # ([api] base_url); a wrong code opens the request again and texts the link again.
        notifiers=[SmsWwNotifier(recipients=[APPROVER], sender="Airflow")],
        code_length=8,
        alphanumeric=True,  # digits and capitals (typed in any case); 36^8 codes, 3 tries
        max_attempts=3,
        code_valid_for=timedelta(minutes=15),
        retries=0,  # a retry would text a new code and give a fresh set of attempts
    )

    @task
    def publish(name: str) -> str:
        print(f"Publishing {name}")
        return name

    release = prepare_release()
    release >> approve >> publish(release)
