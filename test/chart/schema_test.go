package chart

import (
	"flag"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/regcred/regcred/pkg/app"
)

func TestSchemaRejectsBadValues(t *testing.T) {
	inlinePassword := exampleRegistry()
	inlinePassword["password"] = map[string]any{"value": "hunter2"}
	typo := exampleRegistry()
	typo["usename"] = map[string]any{"value": "u"}
	for _, tc := range []struct {
		name   string
		values values
		// want are parts of the error message: the offending key first.
		want []string
	}{
		{"unknown top-level key", values{"replicas": 3}, []string{"replicas", "not allowed"}},
		{"unknown nested key", values{"webhook": values{"timeout": 5}}, []string{"webhook", "timeout"}},
		{"wrong type", values{"replicaCount": "two"}, []string{"replicaCount", "integer"}},
		{"wrong boolean", values{"tls": values{"certManager": values{"enabled": "yes"}}}, []string{"enabled", "boolean"}},
		{"zero replicas", values{"replicaCount": 0}, []string{"replicaCount"}},
		{"webhook timeout too long", values{"webhook": values{"timeoutSeconds": 60}}, []string{"timeoutSeconds"}},
		{"bad duration", values{"checkInterval": "ten minutes"}, []string{"checkInterval"}},
		{"unknown registry type", values{"config": values{"registries": []any{map[string]any{"name": "x", "type": "nexus", "url": "nexus.example.com"}}}}, []string{"type"}},
		{"registry field typo", values{"config": values{"registries": []any{typo}}}, []string{"usename"}},
		{"inline password in a ConfigMap", values{"config": values{"registries": []any{inlinePassword}}}, []string{"password", "secretKeyRef"}},
		{"both existing ConfigMap and Secret", values{"config": values{"existingConfigMap": "a", "existingSecret": "b"}}, []string{"/config/existingSecret", "must be ''"}},
		{"recovery enabled not a boolean", values{"recovery": values{"enabled": "yes"}}, []string{"enabled", "boolean"}},
		{"recovery key typo", values{"recovery": values{"enable": true}}, []string{"recovery", "enable"}},
		{"no evictions", values{"recovery": values{"evictionsPerSecond": 0}}, []string{"evictionsPerSecond"}},
		{"registries and an existing ConfigMap", values{"config": values{"existingConfigMap": "a", "registries": []any{exampleRegistry()}}}, []string{"/config/registries", "maxItems"}},
		{"a namespaceSelector that is no label selector", values{"config": values{"registries": []any{withSelector(values{"team": "a"})}}}, []string{"namespaceSelector", "team"}},
		{"a selector expression without values", values{"config": values{"registries": []any{withSelector(values{"matchExpressions": []any{values{"key": "team", "operator": "In"}}})}}}, []string{"matchExpressions", "values"}},
		{"a selector operator that does not exist", values{"config": values{"registries": []any{withSelector(values{"matchExpressions": []any{values{"key": "team", "operator": "Equals", "values": []any{"a"}}}})}}}, []string{"operator"}},
		{"a matchCondition without expression", values{"webhook": values{"matchConditions": []any{values{"name": "x"}}}}, []string{"matchConditions", "expression"}},
		{"a privileged port", values{"webhook": values{"port": 443}}, []string{"port"}},
		{"an unknown strategy", values{"strategy": values{"type": "BlueGreen"}}, []string{"strategy", "type"}},
		{"extra volume without a source", values{"extraVolumes": []any{map[string]any{"name": "ca"}}}, []string{"extraVolumes", "minProperties"}},
		{"extra volume named as the chart's", values{"extraVolumes": []any{map[string]any{"name": "serving-cert", "emptyDir": map[string]any{}}}}, []string{"extraVolumes", "name"}},
		{"extra mount with a relative path", values{"extraVolumeMounts": []any{map[string]any{"name": "ca", "mountPath": "etc/ca"}}}, []string{"extraVolumeMounts", "mountPath"}},
		{"extra mount field typo", values{"extraVolumeMounts": []any{map[string]any{"name": "ca", "mountPath": "/etc/ca", "readonly": true}}}, []string{"extraVolumeMounts", "readonly"}},
		{"log level 0", values{"logLevel": 0}, []string{"logLevel"}},
		{"log level \"0\"", values{"logLevel": "0"}, []string{"logLevel"}},
		{"a log level zap does not know", values{"logLevel": "warn"}, []string{"logLevel"}},
		{"no certificate lifetime", values{"tls": values{"selfManaged": values{"certValidity": "0"}}}, []string{"certValidity"}},
		{"a certificate lifetime under 30s", values{"tls": values{"selfManaged": values{"certValidity": "10s"}}}, []string{"certValidity"}},
		{"no CA lifetime", values{"tls": values{"selfManaged": values{"caValidity": "0"}}}, []string{"caValidity"}},
		{"a PodDisruptionBudget of 0%", values{"podDisruptionBudget": values{"maxUnavailable": "0%"}}, []string{"maxUnavailable"}},
		{"a PodDisruptionBudget over 100%", values{"podDisruptionBudget": values{"maxUnavailable": "101%"}}, []string{"maxUnavailable"}},
		{"an issuer kind without name", values{"tls": values{"certManager": values{"enabled": true, "issuerRef": values{"kind": "ClusterIssuer"}}}}, []string{"issuerRef", "name"}},
		{"an issuer group without name", values{"tls": values{"certManager": values{"enabled": true, "issuerRef": values{"group": "example.com"}}}}, []string{"issuerRef", "name"}},
		{"a nameOverride with capitals", values{"nameOverride": "Foo"}, []string{"nameOverride"}},
		{"a nameOverride with an underscore", values{"nameOverride": "foo_bar"}, []string{"nameOverride"}},
		{"a nameOverride too long for the node agent's label", values{"nameOverride": strings.Repeat("n", 53)}, []string{"nameOverride"}},
		{"a fullnameOverride with capitals", values{"fullnameOverride": "Foo"}, []string{"fullnameOverride"}},
		{"a fullnameOverride with a dot", values{"fullnameOverride": "my.regcred"}, []string{"fullnameOverride"}},
		{"a fullnameOverride that starts with a digit", values{"fullnameOverride": "1st"}, []string{"fullnameOverride"}},
		{"a fullnameOverride too long for its suffixes", values{"fullnameOverride": strings.Repeat("f", 49)}, []string{"fullnameOverride"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.values)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			_, err = helm(t, "lint", chartDir, "--values", valuesFile(t, tc.values))
			require.Error(t, err, "helm lint fails too")
		})
	}
}

// Values that would render what the API server, the kubelet or
// cert-manager refuses, or a regcred the kubelet kills mid-shutdown, fail
// at render time, saying which.
func TestTemplateRefusesWhatTheClusterWould(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values values
		want   []string
	}{
		{"the webhook on the metrics port", values{"webhook": values{"port": 8080}}, []string{"metrics.port 8080: also webhook.port"}},
		{"health on the metrics port", values{"healthPort": 8080}, []string{"metrics.port 8080: also healthPort"}},
		{"health on the webhook port", values{"healthPort": 9443}, []string{"healthPort 9443: also webhook.port"}},
		{"the agent's ports the same", values{"nodeTrust": values{"enabled": true, "metricsPort": 8081}}, []string{"nodeTrust.healthPort 8081: also nodeTrust.metricsPort"}},
		{"a preStop sleep past the grace period", values{"preStopSleepSeconds": 60}, []string{"terminationGracePeriodSeconds 50: must exceed", "100 in all"}},
		{"a drain past the grace period", values{"gracefulShutdownTimeout": "60s"}, []string{"terminationGracePeriodSeconds 50: must exceed", "75 in all"}},
		{"a rollout that can neither surge nor stop", values{"strategy": values{"rollingUpdate": values{"maxSurge": 0, "maxUnavailable": "0%"}}}, []string{"maxSurge and maxUnavailable may not both be 0"}},
		{"a cert-manager certificate under an hour", values{"tls": values{"certManager": values{"enabled": true, "duration": "30m"}}}, []string{"tls.certManager.duration", "1h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, tc.values)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func withSelector(sel values) map[string]any {
	r := exampleRegistry()
	r["namespaceSelector"] = sel
	return r
}

// The chart takes a log level exactly when regcred (and its node agent,
// with the same flag) does: zap's flag, as controller-runtime parses it.
func TestSchemaLogLevelMatchesTheBinary(t *testing.T) {
	for _, level := range []any{
		"debug", "info", "error", "panic", "DEBUG", "Info", "warn", "verbose", "",
		1, 2, 5, 6, 127, 1000000, 0, -1, 2.5,
		"1", "3", "+3", "007", "0", "-3", "2.5", "3x",
	} {
		t.Run(fmt.Sprintf("%T %v", level, level), func(t *testing.T) {
			var zapOpts zap.Options
			fs := flag.NewFlagSet("regcred serve", flag.ContinueOnError)
			zapOpts.BindFlags(fs)
			binary := fs.Set("zap-log-level", fmt.Sprint(level)) == nil

			r, err := render(t, values{"logLevel": level, "nodeTrust": values{"enabled": true}})
			if !binary {
				require.Error(t, err, "regcred refuses it: so does the chart")
				assert.Contains(t, err.Error(), "logLevel")
				return
			}
			require.NoError(t, err, "regcred takes it: so does the chart")
			var d appsv1.Deployment
			r.get(t, "Deployment", "regcred", &d)
			parseArgs(t, d.Spec.Template.Spec.Containers[0].Args)
			var ds appsv1.DaemonSet
			r.get(t, "DaemonSet", "regcred-node-agent", &ds)
			parseAgentArgs(t, ds.Spec.Template.Spec.Containers[0].Args)
		})
	}
}

// The chart takes the self-managed certificate's and CA's lifetimes
// exactly when regcred serve does (app.Options.Validate): the
// certificate's at least 30s and ten times --tls-ca-propagation (2m, or
// what extraArgs sets), the CA's at least the certificate's and at most
// 100 years.
func TestSchemaTLSValidityMatchesTheBinary(t *testing.T) {
	var d appsv1.Deployment
	mustRender(t, values{}).get(t, "Deployment", "regcred", &d)
	defaults := d.Spec.Template.Spec.Containers[0].Args
	for _, tc := range []struct {
		cert, ca string
		extra    []string
	}{
		{cert: "2160h", ca: "43800h"},
		{cert: "0", ca: "43800h"},
		{cert: "0s", ca: "43800h"},
		{cert: "0h0m", ca: "43800h"},
		{cert: "10s", ca: "43800h"},
		{cert: "29999ms", ca: "43800h"},
		{cert: "0.4m", ca: "43800h"},
		{cert: "30s", ca: "43800h"},
		{cert: "30s", ca: "43800h", extra: []string{"--tls-ca-propagation=3s"}},
		{cert: "0.5m", ca: "43800h", extra: []string{"--tls-ca-propagation=0s"}},
		{cert: "29s", ca: "43800h", extra: []string{"--tls-ca-propagation=0s"}},
		{cert: "30000ms", ca: "43800h", extra: []string{"--tls-ca-propagation=0s"}},
		{cert: "1200000000µs", ca: "43800h"},
		{cert: "1199999999999ns", ca: "43800h"},
		{cert: "20m", ca: "43800h", extra: []string{"--tls-ca-propagation=-1s"}},
		{cert: "20m", ca: "43800h", extra: []string{"--tls-ca-propagation=2m1s"}},
		{cert: "19m59s", ca: "43800h"},
		{cert: "20m", ca: "43800h"},
		{cert: "1200s", ca: "43800h"},
		{cert: ".5h", ca: "43800h"},
		{cert: "1h30m", ca: "1.5h"},
		{cert: "1h30m", ca: "1h29m"},
		{cert: "43801h", ca: "43800h"},
		{cert: "2160h", ca: "876000h"},
		{cert: "2160h", ca: "876000h1s"},
		{cert: "2160h", ca: "0"},
		{cert: "-1h", ca: "43800h"},
		{cert: "90d", ca: "43800h"},
	} {
		t.Run(fmt.Sprintf("%s %s %v", tc.cert, tc.ca, tc.extra), func(t *testing.T) {
			var args []string
			for _, a := range defaults {
				switch {
				case strings.HasPrefix(a, "--tls-cert-validity="):
					a = "--tls-cert-validity=" + tc.cert
				case strings.HasPrefix(a, "--tls-ca-validity="):
					a = "--tls-ca-validity=" + tc.ca
				}
				args = append(args, a)
			}
			args = append(args, tc.extra...)
			fs := flag.NewFlagSet("regcred serve", flag.ContinueOnError)
			opts := app.DefaultOptions()
			opts.BindFlags(fs)
			var zapOpts zap.Options
			zapOpts.BindFlags(fs)
			binary := fs.Parse(args) == nil && opts.Validate() == nil

			v := values{"tls": values{"selfManaged": values{"certValidity": tc.cert, "caValidity": tc.ca}}}
			if tc.extra != nil {
				v["extraArgs"] = tc.extra
			}
			_, err := render(t, v)
			if binary {
				assert.NoError(t, err, "regcred takes it: so does the chart")
			} else {
				require.Error(t, err, "regcred refuses it: so does the chart")
				assert.Contains(t, err.Error(), "Validity")
			}
		})
	}
}

// An issuer kind or group without its name is refused by the template
// too (past the schema, helm --skip-schema-validation): the chart would
// otherwise use its own issuer, silently.
func TestTemplateIssuerRefNeedsName(t *testing.T) {
	for _, ref := range []values{{"kind": "ClusterIssuer"}, {"group": "example.com"}} {
		_, err := renderRelease(t, "regcred", values{"tls": values{"certManager": values{"enabled": true, "issuerRef": ref}}}, "--skip-schema-validation")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "tls.certManager.issuerRef.name")
	}
}
