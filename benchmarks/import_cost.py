"""Import cost at DAG parse time: what importing the operator, sensor and notifier modules adds to
``import airflow.sdk``, and which heavy modules they pull in.

How it measures. Each sample is a fresh interpreter (``python -c``: nothing cached in
``sys.modules``) that times, with ``perf_counter``, first ``import airflow.sdk`` and then the three
provider modules. The figure is the median of the second timing. Timing both steps inside one
interpreter is what makes the comparison fair and precise: ``import airflow.sdk`` alone takes ~3 s
here and varies by hundreds of milliseconds from one interpreter to the next (2 cores shared with
other work), so the difference of two whole-interpreter medians cannot resolve a 50 ms budget; the
in-process split excludes interpreter start-up and the baseline's own noise.

Two references, alternated sample by sample so that machine noise hits both alike:

- ``sdk``: after ``import airflow.sdk`` (the issue's budget: under 50 ms added);
- ``bases``: after ``airflow.sdk`` *and* the SDK classes that any DAG with an operator, a sensor or a
  notifier loads anyway (``BaseOperator``, ``BaseSensorOperator``, ``BaseNotifier``, ``BaseHook``):
  what is left is the provider's own code.

Heavy modules. The same interpreters record which of ``HEAVY`` the provider's imports add to
``sys.modules`` (httpx counts only when added by us: ``airflow.sdk`` 3.3 already imports it) and how
many ``httpx.Client`` / ``httpx.AsyncClient`` objects are created during those imports. Both must be
zero: clients, phone-number metadata, FastAPI and the sandbox belong to execute time.

Bytecode: the container sets ``PYTHONDONTWRITEBYTECODE`` and the virtualenv has no ``.pyc`` files, so
every interpreter would compile Airflow from source. The samples instead use ``.pyc`` files written
to a throw-away ``PYTHONPYCACHEPREFIX`` by a first, untimed interpreter (whose figure is reported as
the cold cost), as a long-running DAG processor has them.

Exit 1 when the budget is exceeded or anything heavy is loaded at import.

    python benchmarks/import_cost.py [--runs 5] [--budget-ms 50] [--json]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

PROVIDER_MODULES = (
    "airflow_provider_smsww.operators.smsww",
    "airflow_provider_smsww.sensors.smsww",
    "airflow_provider_smsww.notifications.smsww",
)
HEAVY = (
    "httpx",
    "phonenumbers",
    "fastapi",
    "uvicorn",
    "starlette",
    "airflow_provider_smsww._http.client",
    "airflow_provider_smsww._http.auth",
    "airflow_provider_smsww.hooks.smsww",
    "airflow_provider_smsww.sending.batch",
    "airflow_provider_smsww.sending.bulk",
    "airflow_provider_smsww.sandbox",
    "airflow_provider_smsww.sandbox.app",
)
REFERENCES = {
    "sdk": "import airflow.sdk",
    "bases": (
        "import airflow.sdk; from airflow.sdk import BaseOperator, BaseSensorOperator, BaseNotifier, BaseHook"
    ),
}

PROBE = """
import json, sys, time
t0 = time.perf_counter()
{reference}
t1 = time.perf_counter()
import httpx
created = []
for cls in (httpx.Client, httpx.AsyncClient):
    original = cls.__init__
    def counting(self, *a, __original=original, **kw):
        created.append(type(self).__name__)
        __original(self, *a, **kw)
    cls.__init__ = counting
before = {{m for m in {heavy!r} if m in sys.modules}}
t2 = time.perf_counter()
{imports}
t3 = time.perf_counter()
added = sorted(m for m in {heavy!r} if m in sys.modules and m not in before)
print(json.dumps({{"reference_ms": (t1 - t0) * 1000, "added_ms": (t3 - t2) * 1000, "heavy": added,
                  "clients": created}}))
"""


def sample(reference: str) -> dict[str, object]:
    code = PROBE.format(
        reference=REFERENCES[reference],
        heavy=HEAVY,
        imports="\n".join(f"import {m}" for m in PROVIDER_MODULES),
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(
        AIRFLOW_HOME=os.environ["SMSWW_BENCH_AIRFLOW_HOME"],
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        # Bytecode caches as a long-running DAG processor has them, but written to a throw-away
        # prefix: nothing lands in the repository or the virtualenv.
        PYTHONPYCACHEPREFIX=os.environ["SMSWW_BENCH_PYCACHE"],
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(runs: int) -> dict[str, object]:
    for name, prefix in (("SMSWW_BENCH_AIRFLOW_HOME", "airflow-"), ("SMSWW_BENCH_PYCACHE", "pycache-")):
        os.environ[name] = tempfile.mkdtemp(prefix=f"smsww-bench-{prefix}")
        atexit.register(shutil.rmtree, os.environ[name], True)
    cold = sample("sdk")  # compiles everything once (into the prefix) and warms the file system cache
    samples: dict[str, list[dict[str, object]]] = {name: [] for name in REFERENCES}
    for _ in range(runs):
        for name in REFERENCES:  # alternate: noise hits both references alike
            samples[name].append(sample(name))
    result: dict[str, object] = {"runs": runs, "cold_added_ms": round(float(cold["added_ms"]), 1)}  # type: ignore[arg-type]
    for name, items in samples.items():
        added = [float(s["added_ms"]) for s in items]  # type: ignore[arg-type]
        result[name] = {
            "reference_ms": round(statistics.median(float(s["reference_ms"]) for s in items), 1),  # type: ignore[arg-type]
            "added_ms": round(statistics.median(added), 1),
            "added_ms_max": round(max(added), 1),
        }
    heavy = sorted({m for items in samples.values() for s in items for m in s["heavy"]})  # type: ignore[attr-defined]
    clients = sorted({c for items in samples.values() for s in items for c in s["clients"]})  # type: ignore[attr-defined]
    result["heavy_loaded"] = heavy
    result["clients_created"] = clients
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per reference")
    parser.add_argument("--budget-ms", type=float, default=50.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.runs)
    sdk, bases = result["sdk"], result["bases"]
    if not (isinstance(sdk, dict) and isinstance(bases, dict)):
        raise TypeError("unexpected result shape")
    ok = sdk["added_ms"] < args.budget_ms and not result["heavy_loaded"] and not result["clients_created"]
    result.update(benchmark="import_cost", budget_ms=args.budget_ms, ok=ok)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"import airflow.sdk:                        {sdk['reference_ms']:8.1f} ms "
            f"(median of {args.runs})"
        )
        print(
            f"+ operator, sensor, notifier modules:      {sdk['added_ms']:8.1f} ms "
            f"(max {sdk['added_ms_max']}; budget {args.budget_ms:g} ms)"
        )
        print(
            f"  of which the provider's own code:        {bases['added_ms']:8.1f} ms "
            "(after the SDK base classes)"
        )
        print(f"  first import, compiling from source:     {result['cold_added_ms']:8.1f} ms (no .pyc yet)")
        print(f"heavy modules loaded at import:            {result['heavy_loaded'] or 'none'}")
        print(f"httpx clients created at import:           {result['clients_created'] or 'none'}")
        print("OK" if ok else "OVER BUDGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
