{{/* Chart name, truncated to a DNS label. */}}
{{- define "callsd.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, or the release name alone when it already contains the chart name.
Truncated to 63 characters minus room for the longest suffix ("-headless", "-migrate") so that
every derived name is still a valid DNS label.
*/}}
{{- define "callsd.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "callsd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every pod of the release (server and migration Job). */}}
{{- define "callsd.instanceLabels" -}}
app.kubernetes.io/name: {{ include "callsd.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selects the server pods only (not the migration Job's pod). */}}
{{- define "callsd.selectorLabels" -}}
{{ include "callsd.instanceLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* Common labels without a component. */}}
{{- define "callsd.baseLabels" -}}
helm.sh/chart: {{ include "callsd.chart" . }}
{{ include "callsd.instanceLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: callsd
{{- end }}

{{/* Labels of the server's objects. */}}
{{- define "callsd.labels" -}}
{{ include "callsd.baseLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "callsd.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "callsd.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* ServiceAccount of the migration hook Job (the chart's own one does not exist yet at pre-install). */}}
{{- define "callsd.migrationServiceAccountName" -}}
{{- if .Values.migrations.job.serviceAccountName }}
{{- .Values.migrations.job.serviceAccountName }}
{{- else if not .Values.serviceAccount.create }}
{{- default "default" .Values.serviceAccount.name }}
{{- else }}
{{- "default" }}
{{- end }}
{{- end }}

{{- define "callsd.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Name of the Secret holding DATABASE_URL and CALLSD_SECRET_KEY. */}}
{{- define "callsd.secretName" -}}
{{- default (include "callsd.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{- define "callsd.createSecret" -}}
{{- if not .Values.secret.existingSecret }}true{{ end }}
{{- end }}

{{/* Fail early on combinations the schema cannot express. */}}
{{- define "callsd.validate" -}}
{{- if and .Values.secret.databaseUrlSecret .Values.secret.databaseUrl }}
{{- fail "secret.databaseUrl and secret.databaseUrlSecret both set: DATABASE_URL comes from one place. Keep databaseUrlSecret (the Secret your PostgreSQL operator maintains) and drop databaseUrl." }}
{{- end }}
{{- if and (eq .Values.migrations.mode "job") (not .Values.secret.existingSecret) }}
{{- fail "migrations.mode=job needs secret.existingSecret: the pre-install hook Job runs before any Secret of this release exists. Create the Secret first (see the chart README) and set secret.existingSecret." }}
{{- end }}
{{- if and (gt (int .Values.preStopSleepSeconds) 0) (ge (int .Values.preStopSleepSeconds) (int .Values.terminationGracePeriodSeconds)) }}
{{- fail "preStopSleepSeconds must be smaller than terminationGracePeriodSeconds (the grace period must also cover config.shutdownDrain and in-flight RPCs)." }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas." }}
{{- end }}
{{- end }}

{{/* Environment from the Secret, shared by the Deployment and the migration Job. */}}
{{- define "callsd.secretEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secret.databaseUrlSecret | default (include "callsd.secretName" .) }}
      key: {{ .Values.secret.keys.databaseUrl }}
- name: CALLSD_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "callsd.secretName" . }}
      key: {{ .Values.secret.keys.secretKey }}
{{- end }}

{{/* Whether a PodDisruptionBudget is rendered. */}}
{{- define "callsd.pdbEnabled" -}}
{{- if and .Values.podDisruptionBudget.enabled (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}true{{ end }}
{{- end }}
