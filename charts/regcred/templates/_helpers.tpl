{{/* The chart name, shortened for label values. */}}
{{- define "regcred.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: the release name, plus the chart name
unless the release name contains it. At most 48 characters, so that the
longest suffix ("-serving-cert") still fits in a 63-character name.
*/}}
{{- define "regcred.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "regcred.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "regcred.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select regcred's Pods. */}}
{{- define "regcred.selectorLabels" -}}
app.kubernetes.io/name: {{ include "regcred.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The webhook's Service; its DNS names are in the serving certificate. */}}
{{- define "regcred.serviceName" -}}
{{ include "regcred.fullname" . }}-webhook
{{- end }}

{{/* The Secret holding the webhook's serving certificate. */}}
{{- define "regcred.tlsSecretName" -}}
{{ include "regcred.fullname" . }}-tls
{{- end }}

{{/* The cert-manager Certificate of the webhook. */}}
{{- define "regcred.servingCertName" -}}
{{ include "regcred.fullname" . }}-serving-cert
{{- end }}

{{/* The leader-election Lease (--leader-election-id). */}}
{{- define "regcred.leaseName" -}}
{{ include "regcred.fullname" . }}
{{- end }}

{{/* The status ConfigMap (--status-configmap). */}}
{{- define "regcred.statusConfigMap" -}}
{{ default (printf "%s-status" (include "regcred.fullname" .)) .Values.statusConfigMap }}
{{- end }}

{{/* The ConfigMap the chart renders from config.registries. */}}
{{- define "regcred.configMapName" -}}
{{ include "regcred.fullname" . }}-config
{{- end }}

{{/*
The config flag: --config-configmap or --config-secret. Fails when more
than one source is set.
*/}}
{{- define "regcred.configFlag" -}}
{{- $c := .Values.config }}
{{- $set := 0 }}
{{- if $c.registries }}{{ $set = add1 $set }}{{ end }}
{{- if $c.existingConfigMap }}{{ $set = add1 $set }}{{ end }}
{{- if $c.existingSecret }}{{ $set = add1 $set }}{{ end }}
{{- if gt $set 1 }}
{{- fail "config: set only one of config.registries, config.existingConfigMap and config.existingSecret" }}
{{- end }}
{{- if $c.existingSecret -}}
--config-secret={{ $c.existingSecret }}
{{- else if $c.existingConfigMap -}}
--config-configmap={{ $c.existingConfigMap }}
{{- else -}}
--config-configmap={{ include "regcred.configMapName" . }}
{{- end }}
{{- end }}

{{/* DNS names of the webhook Service, as the API server calls it. */}}
{{- define "regcred.dnsNames" -}}
{{- $svc := include "regcred.serviceName" . -}}
- {{ $svc }}.{{ .Release.Namespace }}.svc
- {{ $svc }}.{{ .Release.Namespace }}.svc.cluster.local
{{- end }}

{{/* regcred's ServiceAccount. */}}
{{- define "regcred.serviceAccountName" -}}
{{ include "regcred.fullname" . }}
{{- end }}

{{/* The Secret that keeps the last good config (--last-good-config-secret). */}}
{{- define "regcred.lastGoodSecret" -}}
{{ include "regcred.fullname" . }}-last-good-config
{{- end }}
