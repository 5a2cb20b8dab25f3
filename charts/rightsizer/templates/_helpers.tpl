{{/* The chart name, at most 63 characters. */}}
{{- define "rightsizer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of every object: "rightsizer" unless overridden. */}}
{{- define "rightsizer.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "rightsizer.name" . -}}
{{- end -}}
{{- end -}}

{{- define "rightsizer.serviceAccountName" -}}
{{- default (include "rightsizer.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The reader's user name, as the API server sees it in admission requests. */}}
{{- define "rightsizer.serviceAccountUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "rightsizer.serviceAccountName" . }}
{{- end -}}

{{/* The actuator ServiceAccount (apply.enabled only): the identity of resize patches. */}}
{{- define "rightsizer.actuatorName" -}}
{{- default (printf "%s-actuator" (include "rightsizer.fullname" .)) .Values.actuator.name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rightsizer.actuatorUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "rightsizer.actuatorName" . }}
{{- end -}}

{{- define "rightsizer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rightsizer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rightsizer.labels" -}}
{{ include "rightsizer.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "rightsizer.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{/* Port numbers of prometheus.url's pods: networkPolicy.prometheusPorts, else the URL's. */}}
{{- define "rightsizer.prometheusPorts" -}}
{{- if .Values.networkPolicy.prometheusPorts -}}
{{- toJson .Values.networkPolicy.prometheusPorts -}}
{{- else -}}
{{- $url := urlParse .Values.prometheus.url -}}
{{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+$" $url.host) -}}
{{- if not $port -}}
{{- $port = ternary "443" "80" (eq $url.scheme "https") -}}
{{- end -}}
{{- toJson (list (atoi $port)) -}}
{{- end -}}
{{- end -}}

{{/*
The fixed part of the operator's command line; the Dockerfile's ENTRYPOINT is the same
list (tests/unit/test_chart.py checks it). The liveness endpoint is fixed at 8080.
*/}}
{{- define "rightsizer.command" -}}
- kopf
- run
- -m
- rightsizer.handlers
- --all-namespaces
- --liveness=http://0.0.0.0:8080/healthz
{{- end -}}
