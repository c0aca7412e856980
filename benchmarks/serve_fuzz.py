"""Property-based fuzzing of `moodlens serve` from its own OpenAPI document, with schemathesis.

    python benchmarks/serve_fuzz.py                          # about 10 s: 50 examples per operation
    python benchmarks/serve_fuzz.py --max-examples 500 --seed 1
    python benchmarks/serve_fuzz.py --checks all             # every schemathesis check (some fail by design: see below)

Starts its own server (`python -m moodlens serve` on a free 127.0.0.1 port)
and runs `schemathesis run http://127.0.0.1:PORT/openapi.json` (schemathesis
4.x, the project's [bench] extra) with the checks not_a_server_error and
response_schema_conformance by default, --continue-on-failure, one worker,
both valid and invalid inputs (schemathesis's coverage and fuzzing phases).
Uploads it generates are random bytes, so the models are reached rarely:
this exercises the request parsing and validation around them.

Prints: operations and test cases, the responses by operation and status,
the failures by kind (with one example each) and the server's tracebacks.
Exits 1 if any response was a 5xx (or schemathesis could not run), else 0;
with --strict also on any other failed check.

Some checks of --checks all fail by design: positive_data_acceptance (random
bytes are schema-valid uploads that the server rightly refuses) and
status_code_conformance for answers the framework gives before the app runs.
"""

from __future__ import annotations

import argparse
import base64
import json
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).parent))
import httpx  # noqa: E402
from common import table  # noqa: E402
from serve_common import Server, report_tracebacks  # noqa: E402


def schemathesis_command(url: str, args, report_dir: Path) -> list[str]:
    exe = Path(sys.executable).with_name("schemathesis")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "schemathesis.cli"]
    cmd += ["run", url + "/openapi.json", "--checks", args.checks, "--max-examples", str(args.max_examples),
            "--continue-on-failure", "--workers", "1", "--request-timeout", "60", "--no-color",
            "--report", "json,ndjson", "--report-json-path", str(report_dir / "report.json"),
            "--report-ndjson-path", str(report_dir / "events.ndjson")]
    return cmd + (["--seed", str(args.seed)] if args.seed is not None else [])


def read_events(path: Path):
    """(responses: operation -> Counter of status, failures: code -> first example) from the NDJSON events."""
    responses: dict[str, Counter] = defaultdict(Counter)
    examples: dict[str, dict] = {}
    with open(path) as fh:
        for line in fh:
            scenario = json.loads(line).get("ScenarioFinished")
            if not scenario:
                continue
            recorder = scenario["recorder"]
            interactions = recorder.get("interactions") or {}
            for inter in interactions.values():
                request, response = inter["request"], inter.get("response")
                operation = f"{request['method']} {urlsplit(request['uri']).path}"
                responses[operation][response["status_code"] if response else "no response"] += 1
            for case_id, checks in (recorder.get("checks") or {}).items():
                for check in checks:
                    failure = (check.get("failure_info") or {}).get("failure")
                    if check["status"] != "failure" or not failure or failure["code"] in examples:
                        continue
                    inter = interactions.get(case_id) or {}
                    response = inter.get("response") or {}
                    body = base64.b64decode(response.get("content", {}).get("$base64", "")).decode(errors="replace")
                    request = inter.get("request")
                    operation = f"{request['method']} {urlsplit(request['uri']).path}" if request else failure["operation"]
                    examples[failure["code"]] = {"operation": operation, "check": check["name"],
                                                 "status": response.get("status_code", "-"), "body": body,
                                                 "message": failure["message"]}
    return responses, examples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-examples", type=int, default=50, help="test cases per operation (default: %(default)s)")
    ap.add_argument("--checks", default="not_a_server_error,response_schema_conformance",
                    help="schemathesis checks, comma-separated, or 'all' (default: %(default)s)")
    ap.add_argument("--seed", type=int, help="schemathesis seed, to repeat a run")
    ap.add_argument("--strict", action="store_true", help="exit 1 on any failed check, not only on a 5xx")
    ap.add_argument("--show-output", action="store_true", help="also print schemathesis's own report")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp, Server() as srv:
        reports = Path(tmp)
        cmd = schemathesis_command(srv.url, args, reports)
        shown = [c.replace(srv.url, "http://127.0.0.1:PORT").replace(tmp, "TMP") for c in cmd]
        print("$ " + " ".join(shown) + "\n", flush=True)
        declared = {f"{method.upper()} {path}" for path, item in httpx.get(srv.url + "/openapi.json").json()
                    ["paths"].items() for method in item}
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=tmp)  # its cache stays in tmp
        if args.show_output or not (reports / "report.json").exists():
            print(run.stdout[-20000:] + run.stderr[-5000:])
        if not (reports / "report.json").exists():
            print(f"schemathesis exited with {run.returncode} and wrote no report")
            return 1
        report = json.loads((reports / "report.json").read_text())
        responses, examples = read_events(reports / "events.ndjson")
        tracebacks = report_tracebacks(srv)

    ops, cases = report["operations"], report["test_cases"]
    print(f"## schemathesis {report['schemathesis_version']}, seed {report['seed']}, "
          f"{report['running_time']:.1f} s, stop reason: {report['stop_reason']}\n")
    phases = ", ".join(f"{k} {v['status']}" for k, v in report["phases"].items())
    print(table([{"operations": f"{ops['tested']} tested of {ops['total']} ({ops['errored']} errored)",
                  "test cases": f"{cases['generated']} generated, {cases['with_failures']} with failures",
                  "unique failures": cases["unique_failures"], "phases": phases}]))
    print("\n## Responses by operation and status\n")
    rows: dict[str, Counter] = defaultdict(Counter)
    for op, counts in responses.items():
        rows[op if op in declared else "methods the schema does not declare"].update(counts)
    statuses = sorted({s for counts in rows.values() for s in counts}, key=str)
    print(table([{"operation": op, **{str(s): counts.get(s, "") for s in statuses}, "total": sum(counts.values())}
                 for op, counts in sorted(rows.items())], ["operation", *map(str, statuses), "total"]))
    failures = report["failures"]
    if failures:
        print("\n## Failures by kind\n")
        print(table([{"code": f["code"], "kind": f["title"], "severity": f["severity"], "count": f["count"],
                      "operations": ", ".join(f["operations"])} for f in failures]))
        for code, ex in examples.items():
            first = ex["message"].strip().splitlines()[0][:200]
            print(f"\n{code} e.g. {ex['operation']} -> {ex['status']} {ex['body'][:200]}\n    {ex['check']}: {first}")
    for err in report.get("errors", []):
        print(f"\nschemathesis error: {json.dumps(err)[:500]}")

    server_errors = sum(n for counts in responses.values() for s, n in counts.items()
                        if isinstance(s, int) and s >= 500)
    server_errors += sum(f["count"] for f in failures if f["type"] == "ServerError")
    print(f"\n5xx responses: {server_errors}; server tracebacks: {tracebacks}; schemathesis exit code "
          f"{run.returncode}")
    if server_errors or tracebacks or report.get("errors"):
        return 1
    return 1 if args.strict and failures else 0


if __name__ == "__main__":
    sys.exit(main())
