{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "emitgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified name: the release name, plus the chart name unless it is already in it. */}}
{{- define "emitgate.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "emitgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "emitgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "emitgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "emitgate.labels" -}}
helm.sh/chart: {{ include "emitgate.chart" . }}
{{ include "emitgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "emitgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "emitgate.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret the chart renders: the Redis URL, TLS files when given as values, the config file with configInSecret. */}}
{{- define "emitgate.secretName" -}}
{{- include "emitgate.fullname" . }}
{{- end }}

{{- define "emitgate.configMapName" -}}
{{- printf "%s-config" (include "emitgate.fullname" .) }}
{{- end }}

{{- define "emitgate.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "emitgate.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{/* Where the TLS files are mounted. */}}
{{- define "emitgate.tlsDir" -}}/etc/emitgate/tls{{- end }}

{{/* A TOML string: JSON string escapes are a subset of TOML basic-string escapes. */}}
{{- define "emitgate.tomlString" -}}
{{- toJson (toString .) }}
{{- end }}

{{/* A TOML array of strings. */}}
{{- define "emitgate.tomlStrings" -}}
[{{- range $i, $s := . }}{{ if $i }}, {{ end }}{{ include "emitgate.tomlString" $s }}{{- end }}]
{{- end }}

{{/*
The config file: the user's TOML, then the tables the chart owns ([auth]
and its keys, [tls]), appended so that they cannot interleave with the
user's top-level keys.
*/}}
{{- define "emitgate.configFile" -}}
{{- $auth := .Values.auth -}}
{{ .Values.config | trim }}

# ---- rendered by the chart from values: auth, tls ----
[auth]
insecure_no_auth = {{ $auth.insecureNoAuth }}
{{- range $i, $k := $auth.keys }}

[[auth.keys]]
{{- if not $k.id }}{{ fail (printf "auth.keys[%d]: id is required" $i) }}{{ end }}
{{- if not (or $k.secret_sha256 $k.client_subject) }}{{ fail (printf "auth.keys[%d] (%s): secret_sha256 or client_subject is required" $i $k.id) }}{{ end }}
id = {{ include "emitgate.tomlString" $k.id }}
{{- with $k.secret_sha256 }}
secret_sha256 = {{ include "emitgate.tomlString" . }}
{{- end }}
{{- with $k.client_subject }}
client_subject = {{ include "emitgate.tomlString" . }}
{{- end }}
{{- range $scope := list "targets" "namespaces" "rpcs" }}
{{- with (index $k $scope) }}
{{ $scope }} = {{ include "emitgate.tomlStrings" . }}
{{- end }}
{{- end }}
{{- with $k.rate_per_second }}
rate_per_second = {{ int64 . }}
{{- end }}
{{- with $k.burst }}
burst = {{ int64 . }}
{{- end }}
{{- end }}
{{- if .Values.tls.enabled }}

[tls]
cert = "{{ include "emitgate.tlsDir" . }}/tls.crt"
key = "{{ include "emitgate.tlsDir" . }}/tls.key"
{{- if or .Values.tls.clientCa .Values.tls.mtls }}
client_ca = "{{ include "emitgate.tlsDir" . }}/ca.crt"
client_auth_required = {{ .Values.tls.clientAuthRequired }}
{{- end }}
{{- end }}
{{- end }}
