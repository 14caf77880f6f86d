// Package ecr runs regcred's ECR support end to end: the real AWS SDK
// client against a local endpoint speaking ECR's wire protocol, tokens that
// live seconds, a real registry that accepts only unexpired tokens, and
// regcred replicas on a real control plane.
package ecr

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/regcred/regcred/pkg/app"
	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/test/testbed"
)

const (
	namespace = "regcred"
	// The access key in the config, and regcred's own identity (the
	// environment, as the SDK's default chain reads it) for iam-role.
	keyID, keySecret   = "AKIAREGCREDCONFIG01", "config-secret-access-key-e2e"
	roleID, roleSecret = "AKIAREGCREDROLE0001", "role-secret-access-key-e2e"
	hostKeys           = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
	hostRole           = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
	// Hosts served by the glob registry ecr-any (*.dkr.ecr.*.amazonaws.com):
	// two accounts in one region, and another region.
	hostGlobA       = "333333333333.dkr.ecr.ap-south-1.amazonaws.com"
	hostGlobB       = "444444444444.dkr.ecr.ap-south-1.amazonaws.com"
	hostGlobC       = "555555555555.dkr.ecr.eu-central-1.amazonaws.com"
	backendUser     = "backend"
	backendPassword = "backend-Pa55-e2e"
)

var env struct {
	cp     *testbed.ControlPlane
	ca     *certgen.CA
	reg    *testbed.Registry
	ecr    *testbed.ECR
	client client.Client
	logs   *testbed.LogBuffer
	// imageKeys and imageRole are the same pushed image seen through the
	// two ECR hosts.
	imageKeys, imageRole string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ecr e2e:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx := context.Background()
	// regcred's own AWS identity, from the SDK's default chain.
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": roleID, "AWS_SECRET_ACCESS_KEY": roleSecret,
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
	} {
		if err := os.Setenv(k, v); err != nil {
			return 1, err
		}
	}
	// The test's HTTP client trusts the test CA itself; a CA bundle from the
	// machine's environment cannot apply to it.
	if err := os.Unsetenv("AWS_CA_BUNDLE"); err != nil {
		return 1, err
	}
	var err error
	if env.cp, err = testbed.StartControlPlane(testbed.ControlPlaneOptions{}); err != nil {
		return 1, err
	}
	defer env.cp.Stop()
	if env.ca, err = certgen.NewCA("regcred-ecr-e2e-ca", 24*time.Hour); err != nil {
		return 1, err
	}
	if env.reg, err = testbed.StartRegistry(testbed.RegistryOptions{CA: env.ca, Users: map[string]string{backendUser: backendPassword}}); err != nil {
		return 1, err
	}
	defer env.reg.Stop()
	pushed, err := env.reg.Push(ctx, "team/app", "v1", backendUser, backendPassword)
	if err != nil {
		return 1, err
	}
	repo := strings.TrimPrefix(pushed, env.reg.Host+"/")
	env.imageKeys, env.imageRole = hostKeys+"/"+repo, hostRole+"/"+repo

	if env.ecr, err = testbed.StartECR(env.ca, 12*time.Hour); err != nil {
		return 1, err
	}
	defer env.ecr.Stop()
	env.ecr.AddAccessKey(keyID, keySecret)
	env.ecr.AddAccessKey(roleID, roleSecret)
	for _, h := range []string{hostKeys, hostRole, hostGlobA, hostGlobB, hostGlobC} {
		if err := env.ecr.Front(h, env.reg, backendUser, backendPassword); err != nil {
			return 1, err
		}
	}

	if env.client, err = client.New(env.cp.Config, client.Options{}); err != nil {
		return 1, err
	}
	for _, o := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "aws", Namespace: namespace}, StringData: map[string]string{"id": keyID, "secret": keySecret}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "regcred-config", Namespace: namespace}, Data: map[string]string{"config.yaml": `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- name: ecr-keys
  type: ecr
  url: https://` + hostKeys + `
  ecr:
    auth: access-key
    accessKeyID: {secretKeyRef: {name: aws, key: id}}
    secretAccessKey: {secretKeyRef: {name: aws, key: secret}}
- name: ecr-role
  type: ecr
  url: ` + hostRole + `
  ecr: {auth: iam-role}
- name: ecr-any
  type: ecr
  url: "*.dkr.ecr.*.amazonaws.com"
  ecr:
    auth: access-key
    accessKeyID: {secretKeyRef: {name: aws, key: id}}
    secretAccessKey: {secretKeyRef: {name: aws, key: secret}}
`}},
	} {
		if err := env.client.Create(ctx, o); err != nil {
			return 1, err
		}
	}
	env.logs = &testbed.LogBuffer{}
	log := zap.New(zap.WriteTo(env.logs), zap.UseDevMode(true), zap.Level(zapcore.Level(-1)))
	ctrl.SetLogger(log)
	klog.SetLogger(log)

	code := m.Run()
	logs := env.logs.String()
	for _, secret := range []string{keySecret, roleSecret, backendPassword} {
		if strings.Contains(logs, secret) {
			fmt.Fprintln(os.Stderr, "ecr e2e: a credential appears in regcred's log")
			code = 1
		}
	}
	if code != 0 && os.Getenv("REGCRED_E2E_LOG") != "" {
		fmt.Fprintln(os.Stderr, testbed.Redact(logs, keySecret, roleSecret, backendPassword))
	}
	return code, nil
}

// replicaMetrics holds the metrics of every replica this process ran.
var replicaMetrics metricsRegistries

type metricsRegistries struct {
	mu   sync.Mutex
	regs []*prometheus.Registry
}

func (m *metricsRegistries) add() *prometheus.Registry {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := prometheus.NewRegistry()
	m.regs = append(m.regs, r)
	return r
}

func (m *metricsRegistries) all() []*prometheus.Registry {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]*prometheus.Registry(nil), m.regs...)
}

// replica is one running regcred.
type replica struct {
	*testbed.Regcred
	name string
	stop context.CancelFunc
}

// startReplica starts a regcred replica whose ECR calls carry its name, so
// that the endpoint can tell who called.
func startReplica(t *testing.T, name, lease string) *replica {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	opts := app.DefaultOptions()
	opts.Namespace, opts.ConfigMap, opts.ClusterName = namespace, "regcred-config", "e2e"
	opts.MetricsAddr, opts.ProbeAddr = "0", "0"
	opts.LeaderElectID = lease
	opts.ShutdownTimeout = 5 * time.Second
	opts.ECREndpoint = env.ecr.URL
	opts.ECRTokenBudget = time.Second
	deps := app.Deps{Metrics: replicaMetrics.add(), ECR: ecr.Options{
		HTTPClient:  &http.Client{Transport: replicaHeader{name, env.ecr.Client.Transport}, Timeout: 30 * time.Second},
		BackoffBase: 200 * time.Millisecond, BackoffMax: time.Second,
	}}
	r, err := testbed.StartRegcred(ctx, env.cp.Config, env.ca, opts, deps)
	require.NoError(t, err)
	require.NoError(t, r.App.ConfigStatus().LastError)
	rep := &replica{Regcred: r, name: name, stop: func() { cancel(); r.Wait() }}
	t.Cleanup(rep.stop)
	return rep
}

type replicaHeader struct {
	name string
	rt   http.RoundTripper
}

func (h replicaHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	if gate := ecrGate.reach(); gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	r = r.Clone(r.Context())
	r.Header.Set("X-Regcred-Replica", h.name)
	return h.rt.RoundTrip(r)
}

// ecrGate, while held, keeps every replica's ECR call from reaching the
// endpoint until it is released or the call's context ends: ECR answers
// nothing in between, however long the test takes to look.
var ecrGate gate

type gate struct {
	mu      sync.Mutex
	open    chan struct{} // nil: calls go through
	reached int           // calls that reached the gate while held
}

// hold holds the calls from now until release, or until the test ends.
func (g *gate) hold(t *testing.T) {
	g.mu.Lock()
	g.open, g.reached = make(chan struct{}), 0
	g.mu.Unlock()
	t.Cleanup(g.release)
}

// release lets the held calls, and any later one, go through.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open != nil {
		close(g.open)
		g.open = nil
	}
}

// reach counts a call at the gate and returns what it waits for, nil if
// the gate is not held.
func (g *gate) reach() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.open != nil {
		g.reached++
	}
	return g.open
}

// waiting returns how many calls reached the gate while it was held.
func (g *gate) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reached
}
