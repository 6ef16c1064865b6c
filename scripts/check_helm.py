#!/usr/bin/env python3
"""Offline checks of the callsd Helm chart (helm/callsd). Called by scripts/check-helm.sh.

For the chart defaults and for every values file under helm/callsd/ci/:
  1. `helm lint --strict` (Helm v4 SDK through helm-python-sdk; warnings fail),
  2. render the chart client-side (values.schema.json is enforced by the render),
  3. validate every rendered object against the Kubernetes OpenAPI schemas in strict
     mode (unknown fields fail) with kubernetes-validate, for each Kubernetes version
     in KUBE_VERSIONS; custom resources (ServiceMonitor) are skipped with a note,
  4. a few chart invariants from the design (probes, security context, drain, hooks).
Before that: every CALLSD_* setting of src/config.rs is a chart value whose default is the
binary's, and the install notes name what the Secret lacks and set $KEY.
Then a set of bad values that must be rejected at install time.

No cluster and no network are used. Exit status 0 only if everything passed.
"""

from __future__ import annotations

import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import yaml

import helm_python as helm
import kubernetes_validate
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "callsd"
RELEASE = "callsd"
NAMESPACE = "calls"

# The oldest version the chart supports (Chart.yaml kubeVersion) and the newest schema set
# kubernetes-validate ships. Override with CHECK_HELM_KUBE_VERSIONS="1.31 1.33".
KUBE_VERSIONS = os.environ.get(
    "CHECK_HELM_KUBE_VERSIONS", f"1.30 {kubernetes_validate.latest_version()}"
).split()

# Custom resources: not part of the Kubernetes API schemas. Anything else that has no
# schema is a failure, never a silent pass.
CRD_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "Prometheus Operator CRD",
}

# Values that must make an install fail (schema or template checks).
BAD_VALUES: list[tuple[str, dict[str, Any]]] = [
    ("unknown top-level key", {"replicas": 2}),
    ("unknown nested key", {"image": {"repo": "x"}}),
    ("wrong type", {"replicaCount": "two"}),
    ("bad enum", {"migrations": {"mode": "later"}}),
    ("job migrations without existingSecret", {"migrations": {"mode": "job"}}),
    ("secretKey not base64 of 32 bytes", {"secret": {"secretKey": "hunter2"}}),
    ("databaseUrl not postgres", {"secret": {"databaseUrl": "mysql://x@y/z"}}),
    ("databaseUrl and databaseUrlSecret both set",
     {"secret": {"databaseUrl": "postgres://u@h/d", "databaseUrlSecret": "pg-app"}}),
    ("bad duration", {"config": {"shutdownDrain": "five seconds"}}),
    ("bad webhook duration", {"config": {"webhooks": {"lease": "1 minute"}}}),
    ("bad retry delay", {"config": {"webhooks": {"retrySchedule": ["0s", "soon"]}}}),
    ("empty retry schedule", {"config": {"webhooks": {"retrySchedule": []}}}),
    ("retry schedule as one string", {"config": {"webhooks": {"retrySchedule": "0s,5s"}}}),
    ("allowed CIDR not an address", {"config": {"webhooks": {"allowedCidrs": ["intranet"]}}}),
    ("no webhook concurrency", {"config": {"webhooks": {"concurrency": 0}}}),
    ("unknown webhook key", {"config": {"webhooks": {"retries": 3}}}),
    ("no RPCs in flight", {"config": {"maxInFlight": 0}}),
    ("CORS origin with a path", {"config": {"corsAllowedOrigins": ["https://app.example.com/"]}}),
    ("preStop sleep not shorter than grace period", {"preStopSleepSeconds": 30}),
    ("numeric annotation value", {"podAnnotations": {"a": 1}}),
]

# Each callsd setting the chart exposes as a value: value path under `config` -> the variable the
# ConfigMap sets. Lists are joined with commas. Every CALLSD_* setting of src/config.rs must be here,
# set by a template (TEMPLATE_SETTINGS) or listed in NOT_VALUES with the reason.
SETTINGS: dict[str, str] = {
    "logFormat": "CALLSD_LOG_FORMAT",
    "logLevel": "RUST_LOG",
    "dbPoolSize": "CALLSD_DB_POOL_SIZE",
    "dbConnectTimeout": "CALLSD_DB_CONNECT_TIMEOUT",
    "dbAcquireTimeout": "CALLSD_DB_ACQUIRE_TIMEOUT",
    "dbStatementTimeout": "CALLSD_DB_STATEMENT_TIMEOUT",
    "workerThreads": "CALLSD_WORKER_THREADS",
    "shutdownDrain": "CALLSD_SHUTDOWN_DRAIN",
    "shutdownTimeout": "CALLSD_SHUTDOWN_TIMEOUT",
    "heartbeatInterval": "CALLSD_HEARTBEAT_INTERVAL",
    "changeRetention": "CALLSD_CHANGE_RETENTION",
    "compactionInterval": "CALLSD_COMPACTION_INTERVAL",
    "retentionInterval": "CALLSD_RETENTION_INTERVAL",
    "retentionBatch": "CALLSD_RETENTION_BATCH",
    "feedPollInterval": "CALLSD_FEED_POLL_INTERVAL",
    "authCacheTtl": "CALLSD_AUTH_CACHE_TTL",
    "healthCheckInterval": "CALLSD_HEALTH_CHECK_INTERVAL",
    "maxInFlight": "CALLSD_MAX_IN_FLIGHT",
    "corsAllowedOrigins": "CALLSD_CORS_ALLOWED_ORIGINS",
    "handshakeTimeout": "CALLSD_HANDSHAKE_TIMEOUT",
    "maxConnections": "CALLSD_MAX_CONNECTIONS",
    "maxStreamsPerConnection": "CALLSD_MAX_STREAMS_PER_CONNECTION",
    "http2KeepaliveInterval": "CALLSD_HTTP2_KEEPALIVE_INTERVAL",
    "http2KeepaliveTimeout": "CALLSD_HTTP2_KEEPALIVE_TIMEOUT",
    "tenantLimits.rate": "CALLSD_TENANT_RATE",
    "tenantLimits.burst": "CALLSD_TENANT_BURST",
    "tenantLimits.maxInFlight": "CALLSD_TENANT_MAX_IN_FLIGHT",
    "tenantLimits.maxStreams": "CALLSD_TENANT_MAX_STREAMS",
    "tenantLimits.maxWatches": "CALLSD_TENANT_MAX_WATCHES",
    "webhooks.allowedCidrs": "CALLSD_WEBHOOK_ALLOWED_CIDRS",
    "webhooks.retrySchedule": "CALLSD_WEBHOOK_RETRY_SCHEDULE",
    "webhooks.connectTimeout": "CALLSD_WEBHOOK_CONNECT_TIMEOUT",
    "webhooks.timeout": "CALLSD_WEBHOOK_TIMEOUT",
    "webhooks.deliveryRetention": "CALLSD_WEBHOOK_DELIVERY_RETENTION",
    "webhooks.disableAfter": "CALLSD_WEBHOOK_DISABLE_AFTER",
    "webhooks.lease": "CALLSD_WEBHOOK_LEASE",
    "webhooks.pollInterval": "CALLSD_WEBHOOK_POLL_INTERVAL",
    "webhooks.concurrency": "CALLSD_WEBHOOK_CONCURRENCY",
}
# Settings the templates derive from other values (checked in invariants()).
TEMPLATE_SETTINGS = {"CALLSD_LISTEN", "CALLSD_METRICS_LISTEN", "CALLSD_MIGRATE", "CALLSD_SECRET_KEY"}
NOT_VALUES = {
    "CALLSD_DATA_DIR": "embedded PostgreSQL only; the chart always sets DATABASE_URL",
}
# Chart defaults that differ from the binary's on purpose.
DEFAULTS_DIFFER = {
    "CALLSD_LOG_FORMAT": "JSON logs in a cluster, text on a terminal",
}
CONFIG_RS = ROOT / "src" / "config.rs"

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []
        self.notes: list[str] = []

    def ok(self, what: str) -> None:
        self.passed += 1
        print(f"  PASS {what}")

    def fail(self, what: str, detail: str) -> None:
        self.failed.append(what)
        print(f"  FAIL {what}")
        for line in detail.rstrip().splitlines():
            print(f"       {line}")

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  NOTE {text}")


def load_values(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    # Parse the way `helm -f` does.
    return helm.values_from_yaml(path.read_text())


def lint(report: Report, case: str, values: dict[str, Any]) -> None:
    result = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE)
    problems = [m for m in result.get("messages", []) if m.get("severity", 0) >= 2]
    errors = result.get("errors") or []
    if problems or errors:
        lines = [f"[{ {2: 'WARNING', 3: 'ERROR'}.get(m['severity'], m['severity']) }] {m['path']}: {m['error']}"
                 for m in problems]
        lines += [f"error: {e}" for e in errors if not any(e.strip() in m["error"] for m in problems)]
        report.fail(f"{case}: helm lint --strict", "\n".join(lines))
    else:
        report.ok(f"{case}: helm lint --strict")


def render(values: dict[str, Any]) -> dict[str, str]:
    with helm.Chart.load(str(CHART)) as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE)


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML keeps the last one silently;
    the API server's decoder rejects them)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            keys.add(key)
        return super().construct_mapping(node, deep)


def objects_of(manifests: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    objs = []
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            continue
        for doc in yaml.load_all(text, Loader=StrictLoader):
            if doc:
                objs.append((template, doc))
    return objs


def name_problems(obj: dict[str, Any]) -> list[str]:
    out = []
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    kind = obj.get("kind")
    if kind == "Service" or kind == "Deployment":
        if not (DNS_LABEL.match(name) and len(name) <= 63):
            out.append(f"name {name!r} is not a DNS-1123 label of at most 63 characters")
    elif not (DNS_SUBDOMAIN.match(name) and len(name) <= 253):
        out.append(f"name {name!r} is not a DNS-1123 subdomain")
    labels = dict(meta.get("labels") or {})
    tmpl = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    labels.update(tmpl.get("labels") or {})
    for k, v in labels.items():
        if not isinstance(v, str) or len(v) > 63 or not LABEL_VALUE.match(v):
            out.append(f"label {k}={v!r} is not a valid label value")
    for k, v in {**(meta.get("annotations") or {}), **(tmpl.get("annotations") or {})}.items():
        if not isinstance(v, str):
            out.append(f"annotation {k} is not a string")
    return out


def validate_objects(report: Report, case: str, objs: list[tuple[str, dict[str, Any]]]) -> None:
    seen: dict[tuple[str, str, str], str] = {}
    for template, obj in objs:
        kind = obj.get("kind", "?")
        api = obj.get("apiVersion", "?")
        name = (obj.get("metadata") or {}).get("name", "?")
        what = f"{case}: {kind}/{name} ({template.split('/', 1)[-1]})"
        if kind == "?" or api == "?" or name == "?":
            report.fail(what, "object lacks apiVersion, kind or metadata.name")
            continue
        key = (kind, (obj.get("metadata") or {}).get("namespace", NAMESPACE), name)
        if key in seen:
            report.fail(what, f"duplicate of an object from {seen[key]}")
            continue
        seen[key] = template
        problems = name_problems(obj)
        if (api, kind) in CRD_KINDS:
            if problems:
                report.fail(what, "\n".join(problems))
            else:
                report.ok(f"{what}: names/labels")
            report.note(f"{case}: {kind}/{name} ({api}) skipped: {CRD_KINDS[(api, kind)]}, "
                        "no schema in the Kubernetes API")
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except ValidationError as e:
                path = ".".join(str(p) for p in e.path) or "(root)"
                problems.append(f"k8s {version} strict schema: {path}: {e.message}")
            except SchemaNotFoundError as e:
                problems.append(f"k8s {version}: {e.message} (unknown kind; add it to CRD_KINDS "
                                "only if it really is a custom resource)")
        if problems:
            report.fail(what, "\n".join(problems))
        else:
            report.ok(f"{what}: strict schema k8s {'+'.join(KUBE_VERSIONS)}")


# ---------------------------------------------------------------- chart invariants

def find(objs: list[tuple[str, dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [o for _, o in objs if o.get("kind") == kind]


def check_pod(errs: list[str], where: str, pod: dict[str, Any]) -> None:
    if pod.get("automountServiceAccountToken") is not False:
        errs.append(f"{where}: automountServiceAccountToken is not false")
    psc = pod.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True or (psc.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        errs.append(f"{where}: pod securityContext lacks runAsNonRoot/seccompProfile RuntimeDefault")
    for c in pod.get("containers", []):
        sc = c.get("securityContext") or {}
        if not (sc.get("readOnlyRootFilesystem") is True and sc.get("allowPrivilegeEscalation") is False
                and "ALL" in ((sc.get("capabilities") or {}).get("drop") or [])
                and sc.get("runAsNonRoot") is True):
            errs.append(f"{where}/{c.get('name')}: container securityContext is not locked down")
        if not any(m.get("mountPath") == "/tmp" for m in c.get("volumeMounts") or []):
            errs.append(f"{where}/{c.get('name')}: no volume at /tmp")


def invariants(case: str, values: dict[str, Any], objs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    errs: list[str] = []
    with helm.Chart.load(str(CHART)) as chart:
        v = chart.merge_values(values)
    deps = find(objs, "Deployment")
    if len(deps) != 1:
        return [f"expected one Deployment, got {len(deps)}"]
    dep = deps[0]
    pod = dep["spec"]["template"]["spec"]
    check_pod(errs, "Deployment", pod)
    ru = (dep["spec"].get("strategy") or {}).get("rollingUpdate") or {}
    if ru.get("maxUnavailable") != 0:
        errs.append("Deployment: rollingUpdate.maxUnavailable is not 0")
    if "checksum/config" not in (dep["spec"]["template"]["metadata"].get("annotations") or {}):
        errs.append("Deployment: no checksum/config annotation")
    c = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if ports != {"grpc": 50051, "metrics": 9464}:
        errs.append(f"Deployment: container ports are {ports}")
    want_probes = {"startupProbe": ("startup", ""), "readinessProbe": ("readiness", ""),
                   "livenessProbe": ("liveness", "liveness")}
    for field, (key, service) in want_probes.items():
        probe = c.get(field)
        if v["probes"][key]["enabled"]:
            if not probe or probe.get("grpc") != {"port": 50051, "service": service}:
                errs.append(f"Deployment: {field} is not grpc port 50051 service {service!r}: {probe}")
        elif probe:
            errs.append(f"Deployment: {field} present although disabled")
    sleep = (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds")
    if v["preStopSleepSeconds"] > 0 and sleep != v["preStopSleepSeconds"]:
        errs.append(f"Deployment: preStop.sleep.seconds is {sleep}, want {v['preStopSleepSeconds']}")
    if pod.get("terminationGracePeriodSeconds") != v["terminationGracePeriodSeconds"]:
        errs.append("Deployment: terminationGracePeriodSeconds not from values")
    env = {e["name"]: e for e in c.get("env", [])}
    for var, key in (("DATABASE_URL", "databaseUrl"), ("CALLSD_SECRET_KEY", "secretKey")):
        ref = ((env.get(var) or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        if ref.get("key") != v["secret"]["keys"][key]:
            errs.append(f"Deployment: {var} does not come from the Secret key {v['secret']['keys'][key]}")
        if var == "DATABASE_URL" and v["secret"].get("databaseUrlSecret") \
                and ref.get("name") != v["secret"]["databaseUrlSecret"]:
            errs.append(f"Deployment: DATABASE_URL not from secret.databaseUrlSecret: {ref}")
    cms = find(objs, "ConfigMap")
    data = cms[0].get("data", {}) if cms else {}
    job_mode = v["migrations"]["mode"] == "job"
    want = {"CALLSD_MIGRATE": "false" if job_mode else "true",
            "CALLSD_LISTEN": f"{v['config']['bindAddress']}:50051",
            "CALLSD_METRICS_LISTEN": f"{v['config']['bindAddress']}:9464"}
    for path, var in SETTINGS.items():
        want[var] = as_env(lookup(v["config"], path))
    for k, w in want.items():
        if data.get(k) != w:
            errs.append(f"ConfigMap: {k}={data.get(k)!r}, want {w!r}")
    jobs = find(objs, "Job")
    if job_mode:
        if len(jobs) != 1:
            errs.append(f"job mode: expected one migration Job, got {len(jobs)}")
        else:
            job = jobs[0]
            ann = job["metadata"].get("annotations") or {}
            if ann.get("helm.sh/hook") != "pre-install,pre-upgrade":
                errs.append("migration Job is not a pre-install,pre-upgrade hook")
            jpod = job["spec"]["template"]["spec"]
            check_pod(errs, "Job", jpod)
            if jpod["containers"][0].get("args") != ["migrate"]:
                errs.append("migration Job does not run `callsd migrate`")
        if find(objs, "Secret"):
            errs.append("job mode: the chart must not create the Secret (pre-install hook ordering)")
    elif jobs:
        errs.append("startup mode: unexpected Job")
    # Selectors of the server's objects must not pick up the migration Job's pod.
    selectors = [("Deployment", dep["spec"]["selector"]["matchLabels"])]
    selectors += [(f"Service/{o['metadata']['name']}", o["spec"].get("selector") or {})
                  for o in find(objs, "Service")]
    selectors += [("PodDisruptionBudget", o["spec"]["selector"]["matchLabels"])
                  for o in find(objs, "PodDisruptionBudget")]
    for job in jobs:
        jl = job["spec"]["template"]["metadata"].get("labels") or {}
        for what, sel in selectors:
            if sel and all(jl.get(k) == val for k, val in sel.items()):
                errs.append(f"{what} selector {sel} matches the migration Job's pod")
    pod_labels = dep["spec"]["template"]["metadata"].get("labels") or {}
    for what, sel in selectors:
        if not sel or not all(pod_labels.get(k) == val for k, val in sel.items()):
            errs.append(f"{what} selector {sel} does not match the server pods")
    svc = [s for s in find(objs, "Service") if s["metadata"]["name"] == dep["metadata"]["name"]]
    if not svc or not any(p.get("name") == "grpc" and p.get("appProtocol") == "grpc"
                          for p in svc[0]["spec"]["ports"]):
        errs.append("Service: no port named grpc with appProtocol grpc")
    if case.startswith("all-on"):
        kinds = {o.get("kind") for _, o in objs}
        for k in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy",
                  "ServiceMonitor", "Ingress", "Job", "ServiceAccount"):
            if k not in kinds:
                errs.append(f"all-on values do not produce a {k}")
    return errs


def lookup(node: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        node = node[part]
    return node


def as_env(value: Any) -> str:
    """The string the ConfigMap must hold for a value (as the template renders it)."""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# humantime's units, as far as the chart and config.rs use them.
DURATION_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "secs": 1, "m": 60, "min": 60, "mins": 60,
                  "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
                  "d": 86400, "day": 86400, "days": 86400}


def normalised(text: str) -> Any:
    """A default as a comparable value: seconds for durations, numbers, lists of those."""
    text = text.strip()
    if "," in text:
        return [normalised(part) for part in text.split(",") if part.strip()]
    if text == "":
        return []
    parts = re.findall(r"([0-9]+)\s*([a-z]+)", text)
    if parts and "".join(n + u for n, u in parts) == text.replace(" ", ""):
        if all(u in DURATION_UNITS for _, u in parts):
            return sum(int(n) * DURATION_UNITS[u] for n, u in parts)
    try:
        return float(text.replace("_", ""))
    except ValueError:
        return text.lower()


def binary_settings() -> dict[str, str | None]:
    """Environment variable -> default (None when it has none) of every setting in src/config.rs."""
    source = CONFIG_RS.read_text()
    settings: dict[str, str | None] = {}
    for attribute in re.findall(r"#\[arg\(([^\]]*)\)\]", source):
        env = re.search(r'env\s*=\s*"([A-Z0-9_]+)"', attribute)
        if not env:
            continue
        default = (re.search(r'default_value\s*=\s*"([^"]*)"', attribute)
                   or re.search(r"default_value_t\s*=\s*([^,\s]+)", attribute))
        settings[env.group(1)] = default.group(1) if default else None
    return settings


def check_settings(report: Report) -> None:
    """Every setting of the binary is a value (or set by a template, or listed as not one), and
    each value's default is the binary's."""
    print("== settings of src/config.rs")
    settings = binary_settings()
    if not settings:
        report.fail("settings of src/config.rs", f"no `env = ...` settings found in {CONFIG_RS}")
        return
    exposed = set(SETTINGS.values()) | TEMPLATE_SETTINGS | set(NOT_VALUES) | {"DATABASE_URL"}
    missing = sorted(var for var in settings if var not in exposed)
    if missing:
        report.fail("every callsd setting is a chart value",
                    "not values (add them to values.yaml, the schema, the ConfigMap and SETTINGS "
                    "in scripts/check_helm.py, or to NOT_VALUES with the reason): " + ", ".join(missing))
    else:
        report.ok(f"every callsd setting is a chart value ({len(settings)} settings)")
    with helm.Chart.load(str(CHART)) as chart:
        defaults = chart.values["config"]
    wrong = []
    for path, var in SETTINGS.items():
        if var not in settings or var in DEFAULTS_DIFFER:
            continue
        chart_default = normalised(as_env(lookup(defaults, path)))
        binary_default = normalised(settings[var] or "")
        if chart_default != binary_default:
            wrong.append(f"config.{path}: {as_env(lookup(defaults, path))!r}, but {var} defaults to "
                         f"{settings[var]!r} in src/config.rs")
    if wrong:
        report.fail("chart defaults are the binary's", "\n".join(wrong))
    else:
        report.ok("chart defaults are the binary's")


def check_notes(report: Report) -> None:
    """The install notes say which Secret keys are missing, in a sentence, and set $KEY before
    using it."""
    print("== install notes")
    cases = [
        ({}, "lacks database-url and secret-key."),
        ({"secret": {"secretKey": "A" * 43 + "="}}, "lacks database-url."),
        ({"secret": {"databaseUrl": "postgres://u@h/d"}}, "lacks secret-key."),
    ]
    for values, sentence in cases:
        manifests = render(values)
        text = next((t for name, t in manifests.items() if name.endswith("NOTES.txt")), "")
        if sentence not in text:
            lacks = [line for line in text.splitlines() if "lacks" in line]
            report.fail(f"NOTES says {sentence!r}", f"got {lacks}")
        else:
            report.ok(f"NOTES says {sentence!r}")
    text = next(t for name, t in render({}).items() if name.endswith("NOTES.txt"))
    if "KEY=$(" in text and text.index("KEY=$(") < text.index("$KEY"):
        report.ok("NOTES sets $KEY before using it")
    else:
        report.fail("NOTES sets $KEY before using it", text)


# ---------------------------------------------------------------- value references

VALUE_REF = re.compile(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def check_value_references(report: Report) -> None:
    """Every .Values.a.b path used by a template exists in values.yaml.

    Helm renders a missing key as empty (lint --strict does not catch it), so a typo in a
    template would silently drop a setting.
    """
    print("== template value references")
    with helm.Chart.load(str(CHART)) as chart:
        defaults = chart.values
    missing = []
    count = 0
    for tpl in sorted((CHART / "templates").rglob("*")):
        if not tpl.is_file():
            continue
        for lineno, line in enumerate(tpl.read_text().splitlines(), 1):
            for m in VALUE_REF.finditer(line):
                count += 1
                node: Any = defaults
                for part in m.group(1).strip(".").split("."):
                    if not isinstance(node, dict):
                        break  # below a scalar/list (e.g. a method call); nothing to check
                    if part not in node:
                        missing.append(f"{tpl.relative_to(CHART)}:{lineno}: .Values{m.group(1)} "
                                       "is not in values.yaml")
                        break
                    node = node[part]
    if missing:
        report.fail("template value references exist in values.yaml", "\n".join(missing))
    else:
        report.ok(f"template value references exist in values.yaml ({count} references)")


def check_readme_lists_values(report: Report) -> None:
    """helm/callsd/README.md has a table row for every value in values.yaml (a row for a
    map such as `resources` covers everything below it)."""
    readme = (CHART / "README.md").read_text() if (CHART / "README.md").is_file() else ""
    rows = set(re.findall(r"^\| `([^`]+)` \|", readme, flags=re.M))
    with helm.Chart.load(str(CHART)) as chart:
        defaults = chart.values
    missing: list[str] = []

    def walk(node: dict[str, Any], prefix: str) -> None:
        for key, val in node.items():
            path = prefix + key
            if path in rows:
                continue
            if isinstance(val, dict) and val:
                walk(val, path + ".")
            else:
                missing.append(path)

    walk(defaults, "")
    if missing:
        report.fail("README lists every value", "not in the README values table: " + ", ".join(missing))
    else:
        report.ok(f"README lists every value ({len(rows)} rows)")


# ---------------------------------------------------------------- main

def run_case(report: Report, case: str, path: Path | None) -> None:
    print(f"== {case}" + (f" ({path.relative_to(ROOT)})" if path else " (chart defaults)"))
    try:
        values = load_values(path)
    except helm.HelmError as e:
        report.fail(f"{case}: parse values", str(e))
        return
    lint(report, case, values)
    try:
        manifests = render(values)
    except helm.HelmError as e:
        report.fail(f"{case}: render", str(e))
        return
    no_value = [t for t, text in manifests.items() if "<no value>" in text]
    notes = next((t for t in manifests if t.endswith("NOTES.txt")), None)
    if no_value:
        report.fail(f"{case}: render", "'<no value>' in " + ", ".join(no_value))
    elif not notes or "grpcurl" not in manifests[notes]:
        report.fail(f"{case}: render", "NOTES.txt missing or without the grpcurl example")
    else:
        report.ok(f"{case}: render ({sum(1 for t in manifests.values() if t.strip())} templates)")
    try:
        objs = objects_of(manifests)
    except yaml.YAMLError as e:
        report.fail(f"{case}: rendered YAML parses", str(e))
        return
    validate_objects(report, case, objs)
    errs = invariants(case, values, objs)
    if errs:
        report.fail(f"{case}: chart invariants", "\n".join(errs))
    else:
        report.ok(f"{case}: chart invariants")


def run_negative(report: Report) -> None:
    print("== values that must be rejected")
    for what, values in BAD_VALUES:
        try:
            render(values)
        except helm.HelmError as e:
            first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            report.ok(f"rejected: {what} ({first.strip()[:100]})")
        else:
            report.fail(f"rejected: {what}", f"values {values} rendered without error")


def main() -> int:
    started = time.monotonic()
    report = Report()
    print(f"helm SDK {helm.helm_sdk_version()} (helm-python-sdk {helm.__version__}), "
          f"kubernetes-validate {kubernetes_validate.__version__}, k8s schemas {' '.join(KUBE_VERSIONS)}")
    print(f"chart: {CHART}")
    if not (CHART / "Chart.yaml").is_file():
        print(f"check-helm: no chart at {CHART}")
        return 2
    try:
        check_value_references(report)
        check_settings(report)
        check_notes(report)
        check_readme_lists_values(report)
        run_case(report, "defaults", None)
        ci_files = sorted((CHART / "ci").glob("*.yaml"))
        if not ci_files:
            report.fail("ci values files", f"none under {CHART / 'ci'}")
        for f in ci_files:
            run_case(report, f.stem, f)
        run_negative(report)
    except Exception:  # a crash is a failure, with its traceback
        report.fail("check-helm crashed", traceback.format_exc())
    took = time.monotonic() - started
    print()
    if report.failed:
        print("Failed:")
        for f in report.failed:
            print(f"  - {f}")
    if report.notes:
        print(f"{len(report.notes)} custom-resource object(s) were not schema-validated (see NOTE lines).")
    print(f"took {took:.1f}s")
    print(f"check-helm: {report.passed} passed, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
