package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// inflight counts the requests under way across servers, and the most at
// once.
type inflight struct {
	mu        sync.Mutex
	now, peak int
}

func (f *inflight) add(d int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now += d
	f.peak = max(f.peak, f.now)
}

func (f *inflight) most() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.peak
}

// countingRegistryServer is a registry that asks for basic auth and
// answers after delay, counting its requests in f.
func countingRegistryServer(t *testing.T, delay time.Duration, f *inflight) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.add(1)
		defer f.add(-1)
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
	f := &inflight{}
	file := writeFile(t, "config.yaml", checkConfig(map[string]string{
		"fast":  countingRegistryServer(t, 0, f),
		"slow1": countingRegistryServer(t, slow, f),
		"slow2": countingRegistryServer(t, slow, f),
		"stuck": countingRegistryServer(t, time.Minute, f),
	}))
	start := time.Now()
	out, errOut, code := runCLI(t, "check", "-f", file, "--all", "--timeout", "1500ms", "-o", "json")
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
	for _, name := range []string{"slow1", "slow2"} {
		assert.True(t, byName[name].OK, byName[name].Message)
		// Two round trips (the challenge, then the login), each delayed.
		assert.GreaterOrEqual(t, byName[name].Duration, 2*slow, name)
		assert.Less(t, byName["fast"].Duration, byName[name].Duration, "the fast registry's own time, not the slowest's")
	}
	stuck := byName["stuck"]
	assert.False(t, stuck.OK)
	assert.Contains(t, stuck.Message, "deadline exceeded", "given up at --timeout")
	assert.Less(t, stuck.Duration, 10*time.Second, "bounded by --timeout")
	assert.Less(t, byName["slow1"].Duration, stuck.Duration)

	// In parallel: the stuck registry's request was under way while the
	// others were answered.
	assert.GreaterOrEqual(t, f.most(), 2, "checks ran at once")

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

// An ECR registry with auth: iam-role mints as regcred's own AWS identity
// in the cluster; check, on an admin's machine, can only use that
// machine's: it says so. One with an access key is checked as regcred
// checks it.
func TestCheckSaysWhoseAWSIdentityItUses(t *testing.T) {
	localECR(t, func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"__type":"AccessDeniedException","message":"not allowed"}`))
	})
	cfg := `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: role, type: ecr, url: 123456789012.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: iam-role}}
- {name: keys, type: ecr, url: 210987654321.dkr.ecr.eu-west-1.amazonaws.com, ecr: {auth: access-key, accessKeyID: {value: AKIAKEYS}, secretAccessKey: {value: s3cret}}}
- {name: any, type: ecr, url: "*.dkr.ecr.*.amazonaws.com", ecr: {auth: iam-role}}
`
	var out, errOut bytes.Buffer
	err := Run(t.Context(), []string{"check", "-f", "-", "--all", "--timeout", "10s"}, strings.NewReader(cfg), &out, &errOut)
	require.Error(t, err, "ECR refuses both")
	assert.Contains(t, errOut.String(), `registry "role" (ecr.auth: iam-role) is checked with this machine's AWS identity`)
	assert.NotContains(t, errOut.String(), `registry "keys"`)
	assert.NotContains(t, errOut.String(), `registry "any"`, "a glob is skipped: nothing is checked with any identity")
	assert.NotContains(t, out.String()+errOut.String(), "s3cret")
}
