"""What the notifier sends when the user's templates cannot give a text: an alert is never lost.

The fallback text is built from what every callback context holds whatever the run type (scheduled,
manual with or without a logical date, asset-triggered, backfill) and wherever the callback runs (task
runner, dag processor, triggerer): DAG id, task id, run id, state, try number and the first line of the
exception. It never needs ``ds`` or ``logical_date``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_smsww.segments import Encoding

#: Marks a text cut to fit one SMS part. Three dots, not an ellipsis: "…" is not GSM-7 and would turn
#: the whole text into UCS-2, where one part holds 70 characters instead of 160.
TRUNCATION_MARK = "..."


def fit_one_part(text: str) -> str:
    """``text`` unchanged if it fits one SMS part, else cut (at a character boundary) to fit one part
    with :data:`TRUNCATION_MARK` at the end. Counting follows the gateway: GSM-7 extension characters
    count two, UCS-2 counts UTF-16 units, so an emoji is never split in half."""
    from airflow_provider_smsww.segments import analyse

    info = analyse(text)
    if info.parts <= 1:
        return text
    return cut_to(text, info.single_part_limit - len(TRUNCATION_MARK), info.encoding)


def cut_to(text: str, budget: int, encoding: Encoding) -> str:
    """The longest start of ``text`` that costs at most ``budget`` in ``encoding`` (never half a
    character), then :data:`TRUNCATION_MARK`.

    :param budget: what the kept text may cost, the mark not included.
    :param encoding: the encoding of the whole SMS the cut text goes into.
    """
    from airflow_provider_smsww.segments import char_cost

    used, cut = 0, 0
    for index, char in enumerate(text):
        used += char_cost(char, encoding)
        if used > budget:
            break
        cut = index + 1
    return text[:cut].rstrip() + TRUNCATION_MARK


def _get(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``, None when neither works (contexts differ between callers)."""
    if obj is None:
        return None
    try:
        value = getattr(obj, name, None)
        if value is None and isinstance(obj, dict):
            value = obj.get(name)
        return value
    except Exception:
        return None


def _text(value: Any) -> str | None:
    """A state enum or a plain value as text; None when missing."""
    if value is None:
        return None
    value = getattr(value, "value", value)
    text = str(value).strip()
    return text or None


def dag_id_of(context: Any) -> str | None:
    """The DAG id from whatever the context has (``dag``, ``dag_run`` or ``ti``)."""
    for source in ("dag", "dag_run", "ti"):
        if dag_id := _text(_get(_get(context, source), "dag_id")):
            return dag_id
    return None


def run_place(context: Any) -> tuple[str, str, str, int]:
    """The DAG, run, task and map index the context is about ("" and -1 where it has none: a DAG-level
    callback has no task, a deadline alert may have no run)."""
    ti = _get(context, "ti")
    run_id = _text(_get(context, "run_id")) or _text(_get(_get(context, "dag_run"), "run_id"))
    map_index = _get(ti, "map_index")
    return (
        dag_id_of(context) or "",
        run_id or "",
        _text(_get(ti, "task_id")) or "",
        map_index if isinstance(map_index, int) else -1,
    )


def exception_line(exc: Any) -> str | None:
    """``"RuntimeError: first line"`` of the exception (secrets masked), None without one."""
    if exc is None:
        return None
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    text = f"{type(exc).__name__}: {line}" if isinstance(exc, BaseException) else line
    try:
        from airflow_provider_smsww.compat import redact

        return str(redact(text))
    except Exception:
        return text


def fallback_text(context: Any) -> str:
    """``"Airflow FAILED: etl.load try 2: RuntimeError: warehouse down. Run manual__2025-..."``, cut to
    one SMS part. A DAG-level callback (``reason`` in the context) says ``DAG etl`` and its reason; a
    deadline alert says which deadline was missed."""
    dag_id = dag_id_of(context) or "unknown DAG"
    ti = _get(context, "ti")
    dag_run = _get(context, "dag_run")
    run_id = _text(_get(context, "run_id")) or _text(_get(dag_run, "run_id"))
    reason = _text(_get(context, "reason"))
    exc = exception_line(_get(context, "exception"))
    deadline = _get(context, "deadline")
    if deadline is not None:
        when = _text(_get(deadline, "deadline_time"))
        head = f"Airflow DEADLINE MISSED: DAG {dag_id}" + (f" (deadline {when})" if when else "")
    elif reason is not None:
        state = _text(_get(dag_run, "state")) or ("failed" if "fail" in reason else reason)
        head = f"Airflow {state.upper()}: DAG {dag_id} ({reason})"
        if task_id := _text(_get(ti, "task_id")):
            head += f", last task {task_id}"
    else:
        state = _text(_get(ti, "state")) or ("failed" if exc else "alert")
        task_id = _text(_get(ti, "task_id"))
        head = f"Airflow {state.upper()}: {dag_id}" + (f".{task_id}" if task_id else "")
        if try_number := _text(_get(ti, "try_number")):
            head += f" try {try_number}"
    parts = [head + (f": {exc}" if exc else "")]
    if run_id:
        parts.append(f"Run {run_id}")
    return fit_one_part(". ".join(parts))
