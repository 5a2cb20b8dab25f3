"""Write the recording rules (``rules.RULES``) as the chart's files; a test fails on drift.

    python -m rightsizer.adapters.rulesgen charts/rightsizer

writes ``files/recording-rules.yaml`` (a plain Prometheus rules file: ``rule_files:`` or
``promtool tsdb create-blocks-from rules``) and ``templates/prometheusrule.yaml`` (a
``PrometheusRule`` for the Prometheus Operator and, optionally, a ConfigMap holding the plain
file; both gated by ``recordingRules.*`` values).
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from rightsizer.adapters import rules

REGENERATE = "python -m rightsizer.adapters.rulesgen charts/rightsizer"
HEADER = f"# GENERATED from rightsizer.adapters.rules: do not edit; regenerate with {REGENERATE}\n"
PLAIN = Path("files") / "recording-rules.yaml"
TEMPLATE = Path("templates") / "prometheusrule.yaml"


def _dump(document: object) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=1000, allow_unicode=True)


def plain_rules() -> str:
    """The plain rules file: what each rule is read for, then the ``groups:`` document."""
    notes = "".join(f"#   {rule.record}: {rule.reads}\n" for rule in rules.RULES)
    groups = _dump(rules.rule_groups())
    return f"{HEADER}# What the evaluation reads from each rule:\n{notes}{groups}"


def _indented(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "".join(f"{pad}{line}\n" if line else "\n" for line in text.splitlines())


def prometheus_rule_template() -> str:
    """The Helm template: a PrometheusRule, and the plain file in a ConfigMap if asked."""
    groups = _indented(_dump(rules.rule_groups()["groups"]), 4)
    comment = HEADER.replace("# ", "", 1).strip()
    return f"""{{{{- /* {comment} */}}}}
{{{{- $rules := .Values.recordingRules }}}}
{{{{- if and $rules.enabled $rules.prometheusRule }}}}
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: {{{{ include "rightsizer.fullname" . }}}}-recording-rules
  namespace: {{{{ .Release.Namespace }}}}
  labels:
    {{{{- include "rightsizer.labels" . | nindent 4 }}}}
    {{{{- with $rules.labels }}}}
    {{{{- toYaml . | nindent 4 }}}}
    {{{{- end }}}}
spec:
  groups:
{groups}{{{{- end }}}}
{{{{- if and $rules.enabled $rules.configMap }}}}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{{{ include "rightsizer.fullname" . }}}}-recording-rules
  namespace: {{{{ .Release.Namespace }}}}
  labels:
    {{{{- include "rightsizer.labels" . | nindent 4 }}}}
    {{{{- with $rules.labels }}}}
    {{{{- toYaml . | nindent 4 }}}}
    {{{{- end }}}}
data:
  recording-rules.yaml: |
    {{{{- .Files.Get "{PLAIN}" | nindent 4 }}}}
{{{{- end }}}}
"""


def generate() -> dict[Path, str]:
    """Each file's path inside the chart, and its text."""
    return {PLAIN: plain_rules(), TEMPLATE: prometheus_rule_template()}


def digest() -> str:
    """A hash of the rules as Prometheus evaluates them (for caches of backfilled rules)."""
    return hashlib.sha256(_dump(rules.rule_groups()).encode()).hexdigest()[:16]


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print(f"usage: {REGENERATE}", file=sys.stderr)
        return 2
    chart = Path(args[0])
    for relative, text in generate().items():
        (chart / relative).parent.mkdir(parents=True, exist_ok=True)
        (chart / relative).write_text(text, encoding="utf-8")
        print(chart / relative)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
