"""The notifier in ``notifiers=`` of Airflow's human-in-the-loop operators (Airflow >= 3.1): the text
the approver gets, with the request's subject and the link to its response page.

A human-in-the-loop operator calls its notifiers from ``execute`` each time it opens a request, with
the task's context: the task is a ``HITLOperator`` and the task instance is running (a failure or
success callback of the same task is an ordinary alert). The link is the standard provider's
``generate_link_to_ui_from_context``, on ``[api] base_url``. A text with a link is never cut through
the link: the text before it is shortened instead, and when the link leaves too little room for the
subject (a long run id) the text goes out whole, in several parts. Without a link (no ``base_url``) the
text says where to respond.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_smsww.notifications.fallback import TRUNCATION_MARK, cut_to, dag_id_of

#: Characters of the text before the link kept at least; to keep them the text takes several parts.
KEEP = 40
#: Where to respond when there is no link (``[api] base_url`` unset).
NO_LINK = "(Airflow UI, Required Actions)"


@dataclass(frozen=True)
class Request:
    """A human-in-the-loop request the notifier was called for.

    :param subject: the request's subject, as the operator rendered it.
    :param link: the response page; None when it cannot be made.
    :param problem: why there is no link.
    """

    subject: str
    link: str | None
    problem: str | None = None


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
    try:
        link = hitl.generate_link_to_ui_from_context(context=context)
    except Exception as exc:
        return Request(subject, None, f"{type(exc).__name__}: {exc}")
    return Request(subject, _with_base_path(link, conf.get("api", "base_url", fallback="") or ""))


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


def default_text(context: Any, request: Request) -> str:
    """``"Airflow etl.approve: Release Q3 data? https://..."``: what the approver
    gets without a ``message``, and the fallback when the message cannot be used."""
    ti = _get(context, "ti") or _get(context, "task_instance")
    task_id = getattr(ti, "task_id", None)
    where = ".".join(str(part) for part in (dag_id_of(context), task_id) if part)
    head = f"Airflow {where}: " + (request.subject or "awaits your response")
    return with_link(head, request.link)[0]


def with_link(head: str, link: str | None) -> tuple[str, bool]:
    """``head`` then the link (or where to respond), and whether that fits one SMS part. ``head`` is cut
    to make room for the link, but not below :data:`KEEP` characters: a link that leaves less room
    leaves the text whole, in several parts.

    :param head: the text before the link.
    :param link: the response page, or None.
    """
    from airflow_provider_smsww.segments import analyse, char_cost

    tail = f" {link or NO_LINK}"
    head = head.strip()
    if link and link in head:
        tail = ""
    text = head + tail
    info = analyse(text)
    if info.parts <= 1:
        return text, True
    budget = info.single_part_limit - len(TRUNCATION_MARK) - sum(char_cost(c, info.encoding) for c in tail)
    if budget < min(KEEP, len(head)):  # a long link (a long run id): the subject is worth a second part
        return text, False
    return cut_to(head, budget, info.encoding) + tail, True
