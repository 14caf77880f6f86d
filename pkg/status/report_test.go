package status

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/check"
	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/registries"
)

func TestBuild(t *testing.T) {
	cfg, err := config.Parse([]byte(`
apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: hub, type: docker, url: docker.io, username: {value: u}, password: {value: p}}
- {name: quay, type: quay, url: quay.io, default: true, username: {value: u}, password: {value: p}, clusters: {mode: inject-only, names: [prod]}, namespaceSelector: {matchLabels: {team: a}}}
`))
	require.NoError(t, err)
	set, err := registries.Build(context.Background(), cfg, registries.Options{ClusterName: "dev", StoredIn: config.InSecret})
	require.NoError(t, err)
	// The rejected change, loaded as regcred loads every config: its
	// problems carry their registry and field as data.
	_, rejected := registries.Load(context.Background(), []byte(`
apiVersion: regcred.io/v1alpha1
kind: RegistryKonfig
registries:
- {name: hub, type: docker, url: quay.io, username: {value: u}, password: {value: p}}
- {name: new, type: nexus, url: nexus.example.com}
`), registries.Options{StoredIn: config.InSecret})
	require.Error(t, rejected)
	now := time.Date(2026, 11, 28, 1, 2, 3, 0, time.UTC)
	rep := Build("dev", set, configwatch.Status{Version: "12", LastError: rejected, RejectedVersion: "13"}, "ConfigMap regcred/cfg key config.yaml",
		map[string]check.Result{"hub": {Registry: "hub", OK: false, Message: "credentials rejected", Time: now}})

	require.Len(t, rep.Registries, 3)
	assert.Equal(t, "quay", rep.Registries[0].Name, "the default registry is listed first")
	assert.True(t, rep.Registries[0].Valid)
	assert.False(t, rep.Registries[0].Injects)
	assert.Equal(t, "team=a", rep.Registries[0].NamespaceSelector)
	hub := rep.Registries[1]
	assert.False(t, hub.Valid)
	assert.True(t, hub.Serving)
	assert.Equal(t, []string{`url: "quay.io" is not a docker registry address: must be docker.io, optionally with an organisation path (docker.io/myorg)`}, hub.Problems)
	assert.Equal(t, &CheckReport{Time: "2026-11-28T01:02:03Z", Result: "failed", Message: "credentials rejected"}, hub.LastCheck)
	require.Len(t, rep.Registries[2].Problems, 1)
	assert.Equal(t, "new", rep.Registries[2].Name, "a registry only in the rejected config")
	assert.Contains(t, rep.Registries[2].Problems[0], `type: "nexus" is not one of ecr, docker`)
	assert.Equal(t, "13", rep.Config.RejectedVersion)
	assert.Contains(t, rep.Config.LastError, "kind: must be RegistryConfig")
}
