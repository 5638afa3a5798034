{{/* Names, labels and the container environment shared by the server and the STAC publication worker. */}}

{{- define "mlflow-sharinghub.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release `mlflow-sharinghub` of chart `mlflow-sharinghub` is `mlflow-sharinghub`, not `mlflow-sharinghub-mlflow-sharinghub`. */}}
{{- define "mlflow-sharinghub.fullname" -}}
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

{{- define "mlflow-sharinghub.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlflow-sharinghub
{{- end }}

{{/* Selector labels of a component of this chart: `server`, `stac-publish`. */}}
{{- define "mlflow-sharinghub.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mlflow-sharinghub.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The database is named `postgresql` so that `kubectl get pods -l app.kubernetes.io/name=postgresql` finds it. */}}
{{- define "mlflow-sharinghub.postgresql.selectorLabels" -}}
app.kubernetes.io/name: postgresql
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: database
{{- end }}

{{- define "mlflow-sharinghub.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "mlflow-sharinghub.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mlflow-sharinghub.postgresql.secretName" -}}
{{- default (printf "%s-postgres" (include "mlflow-sharinghub.fullname" .)) .Values.postgresql.auth.existingSecret }}
{{- end }}

{{- define "mlflow-sharinghub.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mlflow-sharinghub.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "mlflow-sharinghub.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The secret with `secret-key` (and `backend-store-uri`), created by hand as in the deployment guide. */}}
{{- define "mlflow-sharinghub.secretName" -}}
{{- default (include "mlflow-sharinghub.fullname" .) .Values.mlflowSharinghub.existingSecret }}
{{- end }}

{{/* Where the metadata lives: postgresql (the chart's), uri, uriSecret (an external database) or sqlite. */}}
{{- define "mlflow-sharinghub.backend" -}}
{{- if .Values.postgresql.enabled }}postgresql
{{- else if .Values.mlflowSharinghub.backendStoreUriSecret }}uriSecret
{{- else if .Values.mlflowSharinghub.backendStoreUri }}uri
{{- else }}sqlite
{{- end }}
{{- end }}

{{/* Combinations of values that cannot work, refused at render with a message saying what to change. */}}
{{- define "mlflow-sharinghub.validate" -}}
{{- $backend := include "mlflow-sharinghub.backend" . }}
{{- if and .Values.postgresql.enabled (or .Values.mlflowSharinghub.backendStoreUri .Values.mlflowSharinghub.backendStoreUriSecret) }}
{{- fail "postgresql.enabled uses the chart's database: unset mlflowSharinghub.backendStoreUri and backendStoreUriSecret, or disable postgresql" }}
{{- end }}
{{- if and (eq $backend "sqlite") (or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1)) }}
{{- fail "several replicas cannot share SQLite: enable postgresql or set mlflowSharinghub.backendStoreUri(Secret)" }}
{{- end }}
{{- if and .Values.stacPublish.enabled (eq $backend "sqlite") }}
{{- fail "stacPublish.enabled needs PostgreSQL (the worker runs in its own pod): enable postgresql or set mlflowSharinghub.backendStoreUri(Secret)" }}
{{- end }}
{{- end }}

{{/*
Environment of both containers. Plain settings come from the ConfigMap (envFrom); these entries are the
secrets, and extraEnv last so that it can override anything.
*/}}
{{- define "mlflow-sharinghub.env" -}}
- name: SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "mlflow-sharinghub.secretName" . }}
      key: secret-key
{{- if .Values.postgresql.enabled }}
{{- /* The password stays out of MLFLOW_BACKEND_STORE_URI: libpq reads PGPASSWORD, so a hand-made password
     with any character works without URL encoding. */}}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "mlflow-sharinghub.postgresql.secretName" . }}
      key: {{ .Values.postgresql.auth.secretKeys.userPasswordKey }}
{{- else if .Values.mlflowSharinghub.backendStoreUriSecret }}
- name: MLFLOW_BACKEND_STORE_URI
  valueFrom:
    secretKeyRef:
      name: {{ include "mlflow-sharinghub.secretName" . }}
      key: backend-store-uri
{{- end }}
{{- if .Values.s3.enabled }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ default (printf "%s-s3" (include "mlflow-sharinghub.fullname" .)) .Values.s3.existingSecret }}
      key: access-key-id
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ default (printf "%s-s3" (include "mlflow-sharinghub.fullname" .)) .Values.s3.existingSecret }}
      key: secret-access-key
{{- end }}
{{- if .Values.mlflowSharinghub.gitlabUrl }}
- name: GITLAB_OAUTH_CLIENT_ID
  valueFrom:
    secretKeyRef:
      name: {{ printf "%s-gitlab" (include "mlflow-sharinghub.fullname" .) }}
      key: client-id
- name: GITLAB_OAUTH_CLIENT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ default (printf "%s-gitlab" (include "mlflow-sharinghub.fullname" .)) .Values.mlflowSharinghub.gitlabOauthExistingSecret }}
      key: client-secret
{{- end }}
{{- if and .Values.stacPublish.enabled (ne .Values.stacPublish.auth "none") }}
- name: STAC_PUBLISH_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ default (printf "%s-stac-publish" (include "mlflow-sharinghub.fullname" .)) .Values.stacPublish.existingSecret }}
      key: token
{{- end }}
{{- if kindIs "map" .Values.extraEnv }}
{{- range $name, $value := .Values.extraEnv }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- else if .Values.extraEnv }}
{{ toYaml .Values.extraEnv }}
{{- end }}
{{- end }}
