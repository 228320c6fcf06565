{{- define "dbprobe.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dbprobe.fullname" -}}
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

{{- define "dbprobe.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dbprobe.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dbprobe.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "dbprobe.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "dbprobe.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dbprobe.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dbprobe.secretName" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else if .Values.secret.env }}
{{- include "dbprobe.fullname" . }}
{{- end }}
{{- end }}

{{- define "dbprobe.runId" -}}
{{- default .Release.Name .Values.runId }}
{{- end }}

{{/*
dbprobe.timeoutSeconds: a Go duration of the simple forms 1500ms, 2s or 1m
as whole seconds rounded up; 0 for other forms (not checked).
*/}}
{{- define "dbprobe.timeoutSeconds" -}}
{{- $d := toString . }}
{{- if regexMatch "^[0-9]+ms$" $d }}{{ add (div (sub (trimSuffix "ms" $d | atoi) 1) 1000) 1 }}
{{- else if regexMatch "^[0-9]+s$" $d }}{{ trimSuffix "s" $d | atoi }}
{{- else if regexMatch "^[0-9]+m$" $d }}{{ mul (trimSuffix "m" $d | atoi) 60 }}
{{- else }}0{{ end }}
{{- end }}

{{/*
dbprobe.config: the configuration of one zone's observer, from .Values.config
plus what the chart owns. Call with (dict "root" $ "zone" $zone).
*/}}
{{- define "dbprobe.config" -}}
{{- $root := .root }}
{{- $zone := .zone }}
{{- $c := $root.Values.config }}
{{- range $key := list "run_id" "observer" }}
{{- if hasKey $c $key }}
{{- fail (printf "config.%s is set by the chart: use runId and zones[].observer instead" $key) }}
{{- end }}
{{- end }}
{{- if dig "http" "listen" "" $c }}
{{- fail "config.http.listen is set by the chart (0.0.0.0:8306, the Service's target): remove it" }}
{{- end }}
{{- if dig "sinks" "journal" "dir" "" $c }}
{{- fail "config.sinks.journal.dir is set by the chart (/var/lib/dbprobe, the persistent volume): remove it" }}
{{- end }}
{{- $timeout := include "dbprobe.timeoutSeconds" (default "2s" $c.timeout) | atoi }}
{{- range $t := $c.targets }}
{{- $timeout = max $timeout (include "dbprobe.timeoutSeconds" (default "0s" $t.timeout) | atoi) }}
{{- end }}
{{- if lt (int $root.Values.terminationGracePeriodSeconds) (add $timeout 15) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed the largest probe timeout (%ds) by at least 15 s: dbprobe finishes in-flight probes, flushes the journal and writes the report before it exits" (int $root.Values.terminationGracePeriodSeconds) $timeout) }}
{{- end }}
{{- $observer := default (printf "%s-%s" (include "dbprobe.fullname" $root) $zone.name) $zone.observer }}
{{- $labels := merge (dict "zone" $zone.name) (default dict $zone.observerLabels) }}
{{- $owned := dict
    "run_id" (include "dbprobe.runId" $root)
    "observer" (dict "name" $observer "labels" $labels)
    "sinks" (dict "journal" (dict "dir" "/var/lib/dbprobe"))
    "http" (dict "listen" "0.0.0.0:8306") }}
{{- mustMergeOverwrite (deepCopy $c) $owned | toYaml }}
{{- end }}
