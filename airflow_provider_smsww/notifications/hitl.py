"""The notifier in ``notifiers=`` of Airflow's human-in-the-loop operators (Airflow >= 3.1): the text
the approver gets, with the request's subject and the link to its response page.

A human-in-the-loop operator calls its notifiers from ``execute`` each time it opens a request, with
the task's context: the task is a ``HITLOperator`` and the task instance is running (a failure or
success callback of the same task is an ordinary alert). The link is the standard provider's
``generate_link_to_ui_from_context``, on ``[api] base_url``. A text with a link is never cut through
the link: the text before it is shortened instead, and when the link leaves too little room for the
subject (a long run id) the text goes out whole, in several parts. Without a link (no ``base_url``) the
text says where to respond: the Required Actions page, with the DAG, task and run. A request opened again
(a wrong one-time code) starts with the task's ``request_notice``, so the text sent again says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_smsww.notifications.fallback import TRUNCATION_MARK, cut_to, dag_id_of

#: Characters of the text before the link kept at least; to keep them the text takes several parts.
KEEP = 40
#: Where to respond when there is no link (``[api] base_url`` unset): filled with the DAG, task and run.
NO_LINK = "(Airflow UI, Required Actions: {task}, run {run_id})"
#: What the task log says once per request when there is no link.
SET_BASE_URL = (
    "set [api] base_url (AIRFLOW__API__BASE_URL) to the address people open Airflow at, and the text "
    "carries the link to the response page"
)


@dataclass(frozen=True)
class Request:
    """A human-in-the-loop request the notifier was called for.

    :param subject: the request's subject, as the operator rendered it.
    :param link: the response page; None when it cannot be made.
    :param problem: why there is no link.
    :param place: where to respond without a link (:data:`NO_LINK`, filled in).
    :param notice: what the approver must read first in a request opened again (the task's
        ``request_notice``: a wrong code, the tries left), or None.
    """

    subject: str
    link: str | None
    problem: str | None = None
    place: str = ""
    notice: str | None = None

    @property
    def answer_at(self) -> str:
        """The link, or where to respond without one."""
        return self.link or self.place


def request_of(context: Any) -> Request | None:
    """The request when the notifier runs in ``notifiers=`` of a human-in-the-loop operator, else None."""
    from airflow_provider_smsww.compat import conf, hitl_operator

    hitl = hitl_operator()
    task = _get(context, "task")
    ti = _get(context, "ti") or _get(context, "task_instance")
    if hitl is None or not isinstance(task, hitl) or _get(context, "exception") is not None:
        return None
    state = getattr(getattr(ti, "state", None), "value", getattr(ti, "state", None))
    if state is not None and str(state) != "running":
        return None
    subject = str(getattr(task, "subject", "") or "").strip()
    notice = str(getattr(task, "request_notice", None) or "").strip() or None
    run_id = getattr(ti, "run_id", None) or _get(context, "run_id")
    place = NO_LINK.format(task=_where(context), run_id=run_id)
    base_url = conf.get("api", "base_url", fallback="") or ""
    if not base_url.strip():
        return Request(subject, None, "[api] base_url is not set", place, notice)
    try:
        link = hitl.generate_link_to_ui_from_context(context=context)
    except Exception as exc:
        return Request(subject, None, f"{type(exc).__name__}: {exc}", place, notice)
    return Request(subject, _with_base_path(link, base_url), None, place, notice)


def _get(context: Any, name: str) -> Any:
    try:
        return context.get(name)
    except Exception:
        return None


def _with_base_path(link: str, base_url: str) -> str:
    """The link with ``base_url``'s path put back: the provider keeps only its host, so an Airflow
    served under a path (``https://example.com/airflow``) would get a link that misses it."""
    prefix = urlsplit(base_url).path.rstrip("/")
    parts = urlsplit(link)
    if not prefix or parts.path.startswith(prefix + "/"):
        return link
    return urlunsplit(parts._replace(path=prefix + parts.path))


def _where(context: Any) -> str:
    """``"etl.approve"``: the DAG and task of the request."""
    ti = _get(context, "ti") or _get(context, "task_instance")
    return ".".join(str(part) for part in (dag_id_of(context), getattr(ti, "task_id", None)) if part)


def default_text(context: Any, request: Request) -> str:
    """``"Airflow etl.approve: Release Q3 data? https://..."``: what the approver gets without a
    ``message``, and the fallback when the message cannot be used. Without a link the place to respond
    names the DAG and task, so the head does not."""
    head = f"Airflow {_where(context)}: " if request.link else "Airflow: "
    head += with_notice(request.subject or "awaits your response", request)
    return with_link(head, request.answer_at)[0]


def with_notice(text: str, request: Request) -> str:
    """``text`` after the request's notice (a wrong code, the tries left), when it has one."""
    return f"{request.notice} {text}" if request.notice else text


def with_link(head: str, answer_at: str) -> tuple[str, bool]:
    """``head`` then the link (or where to respond), and whether that fits one SMS part. ``head`` is cut
    to make room for the link, but not below :data:`KEEP` characters: a link that leaves less room
    leaves the text whole, in several parts.

    :param head: the text before the link.
    :param answer_at: the response page, or where to respond without one (:attr:`Request.answer_at`).
    """
    from airflow_provider_smsww.segments import analyse, char_cost

    tail = f" {answer_at}"
    head = head.strip()
    if answer_at in head:
        tail = ""
    text = head + tail
    info = analyse(text)
    if info.parts <= 1:
        return text, True
    budget = info.single_part_limit - len(TRUNCATION_MARK) - sum(char_cost(c, info.encoding) for c in tail)
    if budget < min(KEEP, len(head)):  # a long link (a long run id): the subject is worth a second part
        return text, False
    return cut_to(head, budget, info.encoding) + tail, True
