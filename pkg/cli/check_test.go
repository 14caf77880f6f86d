package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// registryServer is a registry that asks for basic auth and answers after
// delay.
func registryServer(t *testing.T, delay time.Duration) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
		if _, _, ok := r.BasicAuth(); !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func checkConfig(hosts map[string]string) string {
	s := "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries:\n"
	for name, host := range hosts {
		s += fmt.Sprintf("- {name: %s, type: other, url: \"http://%s\", connection: insecure, username: {value: u}, password: {value: p}}\n", name, host)
	}
	return s
}

// check -o json says how long each registry's check took: each its own,
// all checked at once, and none longer than --timeout.
func TestCheckDurations(t *testing.T) {
	const slow = 400 * time.Millisecond
	file := writeFile(t, "config.yaml", checkConfig(map[string]string{
		"fast":  registryServer(t, 0),
		"slow1": registryServer(t, slow),
		"slow2": registryServer(t, slow),
		"stuck": registryServer(t, time.Minute),
	}))
	start := time.Now()
	out, errOut, code := runCLI(t, "check", "-f", file, "--all", "--timeout", "1500ms", "-o", "json")
	elapsed := time.Since(start)
	assert.Equal(t, 1, code, "stuck times out: %s", errOut)

	var results []checkResult
	require.NoError(t, json.Unmarshal([]byte(out), &results), out)
	require.Len(t, results, 4)
	byName := map[string]checkResult{}
	for _, r := range results {
		byName[r.Registry] = r
		d, err := time.ParseDuration(r.DurationText)
		require.NoError(t, err)
		assert.InDelta(t, r.Duration.Seconds(), d.Seconds(), 0.001, "duration says durationNanoseconds in Go's notation")
		assert.False(t, r.Time.Before(start.Add(-time.Second)), "time is when the check started")
	}
	assert.True(t, byName["fast"].OK)
	assert.Less(t, byName["fast"].Duration, slow, "the fast registry's own time, not the slowest's")
	for _, name := range []string{"slow1", "slow2"} {
		assert.True(t, byName[name].OK, byName[name].Message)
		// Two round trips (the challenge, then the login), each delayed.
		assert.GreaterOrEqual(t, byName[name].Duration, 2*slow, name)
	}
	stuck := byName["stuck"]
	assert.False(t, stuck.OK)
	assert.GreaterOrEqual(t, stuck.Duration, 1500*time.Millisecond)
	assert.Less(t, stuck.Duration, 10*time.Second, "bounded by --timeout")

	// In parallel: the run took about the longest check, not their sum.
	assert.Less(t, elapsed, 1500*time.Millisecond+2*slow, "checks ran at once (one after the other: 3.1s)")

	var raw []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &raw))
	assert.Contains(t, raw[0], "durationNanoseconds")
	assert.Contains(t, raw[0], "duration")
}

// check --all on a config with no registry checks nothing and says so:
// exit 0, as for a registry whose check is skipped.
func TestCheckNoRegistries(t *testing.T) {
	file := writeFile(t, "config.yaml", "apiVersion: regcred.io/v1alpha1\nkind: RegistryConfig\nregistries: []\n")
	out, errOut, code := runCLI(t, "check", "-f", file, "--all")
	assert.Equal(t, 0, code, errOut)
	assert.Equal(t, file+": no registries to check: the config has none\n", out)

	out, errOut, code = runCLI(t, "check", "-f", file, "--all", "-o", "json")
	assert.Equal(t, 0, code, errOut)
	assert.JSONEq(t, "[]", out)
}
