{{/* The chart name, shortened for label values. */}}
{{- define "regcred.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: the release name, plus the chart name
unless the release name contains it. At most 48 characters, so that the
longest suffix ("-serving-cert") still fits in a 63-character name. It
names Services ("-webhook", "-metrics"), whose names are DNS-1035 labels:
a release name with a dot or a leading digit fails, rather than renaming
objects behind the admin's back; fullnameOverride is the way out.
*/}}
{{- define "regcred.fullname" -}}
{{- $full := "" }}
{{- $from := printf "the release name %q" .Release.Name }}
{{- if .Values.fullnameOverride }}
{{- $full = .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- $from = "fullnameOverride" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- $full = .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $full = printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $full) }}
{{- fail (printf "the name %q (from %s) names regcred's Services (%s-webhook), and a Service's name is a DNS-1035 label: lowercase letters, digits and '-', starting with a letter, no dot. Set fullnameOverride to such a name (e.g. regcred), or install under a release name that is one" $full $from $full) }}
{{- end }}
{{- $full }}
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
The node agent's pull secrets (it runs regcred's image), as a YAML list:
nodeTrust.imagePullSecrets, Secrets of its namespace; by default, in the
release namespace, imagePullSecrets. In a namespace of its own (where
regcred never injects) the release's Secrets are not there: fails rather
than render a DaemonSet that cannot pull its image.
*/}}
{{- define "regcred.nodeAgentImagePullSecrets" -}}
{{- $ns := include "regcred.nodeAgentNamespace" . }}
{{- if .Values.nodeTrust.imagePullSecrets }}
{{- toYaml .Values.nodeTrust.imagePullSecrets }}
{{- else if eq $ns .Release.Namespace }}
{{- toYaml (.Values.imagePullSecrets | default list) }}
{{- else if .Values.imagePullSecrets }}
{{- fail (printf "nodeTrust.imagePullSecrets: the node agent runs regcred's image in namespace %s (nodeTrust.namespace), where the Secrets of imagePullSecrets (namespace %s) are not and regcred never injects: create pull secrets in %s and name them in nodeTrust.imagePullSecrets" $ns .Release.Namespace $ns) }}
{{- else }}
{{- toYaml list }}
{{- end }}
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
PodDisruptionBudget, the spread constraints) selects them. The name is
shortened to 52 characters so that "-node-agent" fits in a label's 63.
*/}}
{{- define "regcred.nodeAgentSelectorLabels" -}}
app.kubernetes.io/name: {{ include "regcred.name" . | trunc 52 | trimSuffix "-" }}-node-agent
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: node-agent
{{- end }}

{{/*
--zap-log-level's value: logLevel, a number written as an integer (Helm
holds the numbers of a values file as float64, which would print 1e+06).
*/}}
{{- define "regcred.logLevel" -}}
{{- if kindIs "string" .Values.logLevel }}
{{- .Values.logLevel }}
{{- else }}
{{- int64 .Values.logLevel }}
{{- end }}
{{- end }}

{{/*
The seconds a Go duration lasts (time.ParseDuration's syntax), as a
float; "invalid" when it is none.
*/}}
{{- define "regcred.durationSeconds" -}}
{{- $d := toString . }}
{{- if not (regexMatch "^[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$" $d) }}
{{- print "invalid" }}
{{- else }}
{{- $units := dict "ns" 0.000000001 "us" 0.000001 "µs" 0.000001 "μs" 0.000001 "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 }}
{{- $total := 0.0 }}
{{- range regexFindAll "([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)" $d -1 }}
{{- $unit := regexFind "[a-zµμ]+$" . }}
{{- $total = addf $total (mulf (float64 (trimSuffix $unit .)) (get $units $unit)) }}
{{- end }}
{{- if hasPrefix "-" $d }}
{{- $total = mulf $total -1 }}
{{- end }}
{{- $total }}
{{- end }}
{{- end }}

{{/*
Fails on the lifetimes regcred serve would refuse (app.Options'
validation), which the schema's patterns cannot all tell: the serving
certificate's at least 30s and ten times --tls-ca-propagation (2m unless
extraArgs sets it), the CA's at least the certificate's and at most 100
years.
*/}}
{{- define "regcred.checkSelfManagedTLS" -}}
{{- $sm := .Values.tls.selfManaged }}
{{- $cert := include "regcred.durationSeconds" $sm.certValidity }}
{{- $ca := include "regcred.durationSeconds" $sm.caValidity }}
{{- $propagation := "2m" }}
{{- range .Values.extraArgs }}
{{- if hasPrefix "--tls-ca-propagation=" . }}
{{- $propagation = trimPrefix "--tls-ca-propagation=" . }}
{{- end }}
{{- end }}
{{- $prop := include "regcred.durationSeconds" $propagation }}
{{- if eq $cert "invalid" }}
{{- fail (printf "tls.selfManaged.certValidity %q: not a Go duration (e.g. 2160h)" (toString $sm.certValidity)) }}
{{- end }}
{{- if eq $ca "invalid" }}
{{- fail (printf "tls.selfManaged.caValidity %q: not a Go duration (e.g. 43800h)" (toString $sm.caValidity)) }}
{{- end }}
{{- if eq $prop "invalid" }}
{{- fail (printf "extraArgs: --tls-ca-propagation %q: not a Go duration" $propagation) }}
{{- end }}
{{- if or (lt (float64 $cert) 30.0) (lt (float64 $ca) (float64 $cert)) (gt (float64 $ca) 3153600000.0) }}
{{- fail (printf "tls.selfManaged.certValidity %s, tls.selfManaged.caValidity %s: regcred refuses them (--tls-cert-validity, --tls-ca-validity): the certificate's must be at least 30s, the CA's at least the certificate's and at most 100 years (876000h)" $sm.certValidity $sm.caValidity) }}
{{- end }}
{{- if or (lt (float64 $prop) 0.0) (gt (float64 $prop) (divf (float64 $cert) 10)) }}
{{- fail (printf "tls.selfManaged.certValidity %s: regcred refuses it with --tls-ca-propagation %s (its default, unless extraArgs sets it): the certificate's lifetime must be at least ten times the time a renewed CA spends in the caBundle before the certificate moves to it, and that time at least 0" $sm.certValidity $propagation) }}
{{- end }}
{{- end }}

{{/*
Fails when metrics.<what>.enabled asks for a ServiceMonitor, a
PrometheusRule or a dashboard while metrics.enabled=false: with nothing
served it would scrape, alert on and chart nothing, and leaving it out
silently would hide that. Called with (list $ what).
*/}}
{{- define "regcred.needsMetrics" -}}
{{- $ := index . 0 }}
{{- $what := index . 1 }}
{{- if not $.Values.metrics.enabled }}
{{- fail (printf "metrics.%s.enabled: needs metrics.enabled, which is false (regcred then serves no metrics); enable metrics, or set metrics.%s.enabled=false" $what $what) }}
{{- end }}
{{- end }}

{{/*
Fails on values that render a Deployment or DaemonSet the API server, the
kubelet or regcred itself would refuse: ports used twice, a grace period
too short for the shutdown it must hold, a rolling update that may neither
surge nor stop a replica, a cert-manager certificate under cert-manager's
minimum of an hour.
*/}}
{{- define "regcred.checkDeployment" -}}
{{- $ports := dict }}
{{- $_ := set $ports (toString .Values.webhook.port) "webhook.port" }}
{{- if hasKey $ports (toString .Values.healthPort) }}
{{- fail (printf "healthPort %v: also %s; each port of regcred's container must differ" .Values.healthPort (get $ports (toString .Values.healthPort))) }}
{{- end }}
{{- $_ := set $ports (toString .Values.healthPort) "healthPort" }}
{{- if and .Values.metrics.enabled (hasKey $ports (toString .Values.metrics.port)) }}
{{- fail (printf "metrics.port %v: also %s; each port of regcred's container must differ" .Values.metrics.port (get $ports (toString .Values.metrics.port))) }}
{{- end }}
{{- if and .Values.nodeTrust.enabled (eq (toString .Values.nodeTrust.healthPort) (toString .Values.nodeTrust.metricsPort)) .Values.metrics.enabled }}
{{- fail (printf "nodeTrust.healthPort %v: also nodeTrust.metricsPort; the node agent's ports must differ" .Values.nodeTrust.healthPort) }}
{{- end }}
{{- $drain := include "regcred.durationSeconds" .Values.gracefulShutdownTimeout }}
{{- if eq $drain "invalid" }}
{{- fail (printf "gracefulShutdownTimeout %q: not a Go duration (e.g. 30s)" (toString .Values.gracefulShutdownTimeout)) }}
{{- end }}
{{- $need := addf (float64 .Values.preStopSleepSeconds) (float64 $drain) 10.0 }}
{{- if le (float64 .Values.terminationGracePeriodSeconds) $need }}
{{- fail (printf "terminationGracePeriodSeconds %v: must exceed preStopSleepSeconds (%v) plus gracefulShutdownTimeout (%s) plus 10, %v in all: the kubelet would kill regcred before it has drained its admissions and written its last index entries" .Values.terminationGracePeriodSeconds .Values.preStopSleepSeconds (toString .Values.gracefulShutdownTimeout) $need) }}
{{- end }}
{{- if .Values.tls.certManager.enabled }}
{{- $d := include "regcred.durationSeconds" .Values.tls.certManager.duration }}
{{- if or (eq $d "invalid") (lt (float64 $d) 3600.0) }}
{{- fail (printf "tls.certManager.duration %q: cert-manager refuses a certificate shorter than 1h" (toString .Values.tls.certManager.duration)) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The Deployment's rollingUpdate: what the admin sets of it, and the
chart's defaults for the rest (maxSurge 1 and maxUnavailable 0; with
hostNetwork 0 and 1). A default that would make both 0, which the API
server refuses, is 1; both set to 0 fails.
*/}}
{{- define "regcred.rollingUpdate" -}}
{{- $set := (.Values.strategy | default dict).rollingUpdate | default dict }}
{{- $rolling := deepCopy $set }}
{{- $default := dict "maxSurge" 1 "maxUnavailable" 0 }}
{{- if .Values.hostNetwork }}
{{- $default = dict "maxSurge" 0 "maxUnavailable" 1 }}
{{- end }}
{{- range $k, $v := $default }}
{{- if not (hasKey $rolling $k) }}
{{- $_ := set $rolling $k $v }}
{{- end }}
{{- end }}
{{- $zero := list "0" "0%" }}
{{- if and (has (toString $rolling.maxSurge) $zero) (has (toString $rolling.maxUnavailable) $zero) }}
{{- if not (hasKey $set "maxSurge") }}
{{- $_ := set $rolling "maxSurge" 1 }}
{{- else if not (hasKey $set "maxUnavailable") }}
{{- $_ := set $rolling "maxUnavailable" 1 }}
{{- else }}
{{- fail "strategy.rollingUpdate: maxSurge and maxUnavailable may not both be 0 (the API server refuses it): a rollout could neither start a replica nor stop one" }}
{{- end }}
{{- end }}
{{- toYaml $rolling }}
{{- end }}
