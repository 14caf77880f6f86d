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

{{/* regcred's ServiceAccount: the chart's, or serviceAccount.name. */}}
{{- define "regcred.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "regcred.fullname" .) .Values.serviceAccount.name }}
{{- else -}}
{{ required "serviceAccount.name: name the ServiceAccount regcred runs as when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The flags the chart sets itself, and the value that sets each: extraArgs
may not set them (a later flag would silently win).
*/}}
{{- define "regcred.chartFlags" -}}
cluster-name: clusterName
config-configmap: config.registries or config.existingConfigMap
config-secret: config.existingSecret
config-key: config.key
webhook-port: webhook.port
cert-dir: tls.certManager.enabled
tls-secret: tls.certManager.enabled
tls-hosts: tls.certManager.enabled
mutating-webhook-configuration: tls.certManager.enabled
validating-webhook-configuration: tls.certManager.enabled
tls-ca-validity: tls.selfManaged.caValidity
tls-cert-validity: tls.selfManaged.certValidity
metrics-bind-address: metrics.enabled and metrics.port
health-probe-bind-address: healthPort
leader-elect: replicaCount
leader-election-id: fullnameOverride
graceful-shutdown-timeout: gracefulShutdownTimeout
check-interval: checkInterval
status-configmap: statusConfigMap
zap-log-level: logLevel
last-good-config-secret: fullnameOverride
exclude-namespaces: webhook.excludeNamespaces
warn-missing-admin-secrets: warnMissingAdminSecrets
recovery: recovery.enabled
recovery-evictions-per-second: recovery.evictionsPerSecond
node-trust-configmap: nodeTrust.enabled
namespace: the release namespace
kubeconfig: nothing (regcred runs in the cluster)
{{- end }}

{{/* extraArgs, refused when one sets a flag the chart sets. */}}
{{- define "regcred.extraArgs" -}}
{{- $owned := include "regcred.chartFlags" . | fromYaml }}
{{- range .Values.extraArgs }}
{{- $name := regexReplaceAll "^-{1,2}([^=]+).*$" (toString .) "${1}" }}
{{- if hasKey $owned $name }}
{{- fail (printf "extraArgs: --%s is set by the chart; use %s instead" $name (get $owned $name)) }}
{{- end }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* The Secret that keeps the last good config (--last-good-config-secret). */}}
{{- define "regcred.lastGoodSecret" -}}
{{ include "regcred.fullname" . }}-last-good-config
{{- end }}

{{/* The ConfigMap where regcred publishes what nodes must trust (--node-trust-configmap). */}}
{{- define "regcred.nodeTrustConfigMap" -}}
{{ include "regcred.fullname" . }}-node-trust
{{- end }}

{{/* The node agent's DaemonSet, ServiceAccount, roles and policy. */}}
{{- define "regcred.nodeAgentName" -}}
{{ include "regcred.fullname" . }}-node-agent
{{- end }}

{{/* The node agent's namespace: nodeTrust.namespace, or the release's. */}}
{{- define "regcred.nodeAgentNamespace" -}}
{{ default .Release.Namespace .Values.nodeTrust.namespace }}
{{- end }}

{{/*
The namespaces regcred never serves nor writes to besides kube-system and
the release namespace, as a JSON list: webhook.excludeNamespaces, and the
node agent's own namespace (nodeTrust.namespace), which is regcred's as
much as the release namespace is.
*/}}
{{- define "regcred.excludedNamespaces" -}}
{{- $ns := .Values.webhook.excludeNamespaces }}
{{- $agent := include "regcred.nodeAgentNamespace" . }}
{{- if and .Values.nodeTrust.enabled (ne $agent .Release.Namespace) (not (has $agent $ns)) }}
{{- $ns = append $ns $agent }}
{{- end }}
{{- $ns | toJson }}
{{- end }}

{{/*
Labels that select the node agent's Pods: a name of their own, so that
nothing that selects regcred's Pods (the webhook Service, the
PodDisruptionBudget, the spread constraints) selects them.
*/}}
{{- define "regcred.nodeAgentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "regcred.name" . }}-node-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node-agent
{{- end }}
