package app

import (
	"flag"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/plan"
)

func TestFlags(t *testing.T) {
	o := DefaultOptions()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	o.BindFlags(fs)
	require.NoError(t, fs.Parse([]string{"--namespace=ops", "--config-secret=registries", "--cluster-name=prod-eu", "--check-interval=0", "--ecr-token-budget=1s", "--exclude-namespaces=monitoring, logging", "--exclude-namespaces=ci", "--recovery", "--recovery-evictions-per-second=0.5", "--node-trust-configmap=regcred-node-trust"}))
	require.NoError(t, o.Validate())
	src := o.Source()
	assert.Equal(t, config.InSecret, src.StoredIn)
	assert.Equal(t, "Secret ops/registries key config.yaml", src.String())
	assert.Equal(t, time.Second, o.ECRTokenBudget)
	assert.Zero(t, o.CheckInterval)
	assert.Equal(t, []string{"monitoring", "logging", "ci"}, o.ExcludeNamespaces)
	assert.True(t, o.Recovery)
	assert.InDelta(t, 0.5, o.RecoveryEvictionsPerSecond, 0)
	assert.False(t, DefaultOptions().Recovery, "recovery is opt-in")
	assert.Equal(t, "regcred-node-trust", o.NodeTrustConfigMap)
	assert.Empty(t, DefaultOptions().NodeTrustConfigMap, "node trust is opt-in")
	assert.Equal(t, plan.Exclusions{"kube-system": true, "ops": true, "monitoring": true, "logging": true, "ci": true}, o.Exclusions())
}

func TestValidateReportsEveryProblem(t *testing.T) {
	o := DefaultOptions()
	o.Namespace = "Bad_NS"
	o.WebhookPort = 0
	o.ECRTokenBudget = 30 * time.Second
	o.CheckInterval = -time.Second
	o.ExcludeNamespaces = []string{"Not A Namespace"}
	o.RecoveryEvictionsPerSecond = 0
	err := o.Validate()
	require.Error(t, err)
	for _, want := range []string{`--namespace "Bad_NS"`, "set --config-configmap or --config-secret", "--webhook-port 0", "--ecr-token-budget 30s", "--check-interval -1s", `--exclude-namespaces "Not A Namespace"`, "--recovery-evictions-per-second 0"} {
		assert.Contains(t, err.Error(), want)
	}

	o = DefaultOptions()
	o.ConfigMap, o.ConfigSecret = "a", "b"
	assert.ErrorContains(t, o.Validate(), "not both")
	o = DefaultOptions()
	o.ConfigMap = "x"
	o.RecoveryEvictionsPerSecond = 100
	assert.ErrorContains(t, o.Validate(), "at most --kube-api-qps (50)")
	o = DefaultOptions()
	o.ConfigMap = "regcred-status"
	assert.ErrorContains(t, o.Validate(), "must not be the config's ConfigMap")
	o = DefaultOptions()
	o.ConfigMap, o.NodeTrustConfigMap = "x", "x"
	assert.ErrorContains(t, o.Validate(), `--node-trust-configmap "x": must not be the config's or the status's ConfigMap`)
	o.NodeTrustConfigMap = "Bad Name"
	assert.ErrorContains(t, o.Validate(), `--node-trust-configmap "Bad Name"`)

	// The TLS Secret is replaced when it holds no TLS material: never one
	// that holds the config.
	for _, clash := range []func(o *Options){
		func(o *Options) { o.ConfigMap, o.ConfigSecret = "", o.TLSSecret },
		func(o *Options) { o.LastGoodSecret = o.TLSSecret },
	} {
		o = DefaultOptions()
		o.TLSSecret, o.TLSHosts = "regcred-tls", []string{"regcred.regcred.svc"}
		clash(&o)
		assert.ErrorContains(t, o.Validate(), `--tls-secret "regcred-tls": must not be the config's Secret or the last good config's`)
	}
	o = DefaultOptions()
	o.ConfigMap, o.ConfigSecret = "", o.LastGoodSecret
	assert.ErrorContains(t, o.Validate(), "must not be the config's Secret")
}

// A rate that is not a finite number passes every comparison with NaN,
// and a limiter of NaN or +Inf never waits: refused, naming the flag.
func TestValidateRefusesRatesThatAreNotFinite(t *testing.T) {
	for _, flagName := range []string{"kube-api-qps", "upkeep-write-qps", "recovery-evictions-per-second"} {
		for _, v := range []string{"NaN", "+Inf", "-Inf"} {
			t.Run(flagName+"="+v, func(t *testing.T) {
				o := DefaultOptions()
				fs := flag.NewFlagSet("serve", flag.ContinueOnError)
				o.BindFlags(fs)
				require.NoError(t, fs.Parse([]string{"--config-configmap=registries", "--recovery", "--" + flagName + "=" + v}))
				assert.ErrorContains(t, o.Validate(), "--"+flagName+" "+v+": must be a finite number")
			})
		}
	}
	// Both at +Inf pass every comparison between them.
	o := DefaultOptions()
	o.ConfigMap = "registries"
	o.KubeAPIQPS, o.RecoveryEvictionsPerSecond = math.Inf(1), math.Inf(1)
	err := o.Validate()
	assert.ErrorContains(t, err, "--kube-api-qps +Inf: must be a finite number")
	assert.ErrorContains(t, err, "--recovery-evictions-per-second +Inf: must be a finite number")
}

// A CA's lifetime is at most 100 years: longer ones would overflow the
// renewal arithmetic of time.Duration.
func TestValidateCapsTheCAValidity(t *testing.T) {
	o := DefaultOptions()
	o.ConfigMap, o.TLSSecret, o.TLSHosts = "registries", "regcred-tls", []string{"regcred.regcred.svc"}
	o.TLSCAValidity = 100 * 365 * 24 * time.Hour
	assert.NoError(t, o.Validate())
	o.TLSCAValidity += time.Hour
	assert.ErrorContains(t, o.Validate(), "at most 100 years")
}
