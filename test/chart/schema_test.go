package chart

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func withSelector(sel values) map[string]any {
	r := exampleRegistry()
	r["namespaceSelector"] = sel
	return r
}
