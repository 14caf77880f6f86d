// Package e2e runs regcred against a real kube-apiserver, etcd and
// kube-controller-manager, registered through a real
// MutatingWebhookConfiguration over TLS, and proves the pull secrets it
// injects by pulling from real registries the way the kubelet resolves them.
package e2e

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/regcred/regcred/pkg/app"
	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/secretstore"
	"github.com/regcred/regcred/test/testbed"
)

const (
	regcredNamespace = "regcred"
	clusterName      = "e2e"
	configName       = "regcred-config"
	// staleNamespace holds a pull secret of a registry that no longer exists.
	staleNamespace = "stale"
	credsSecret    = "registry-creds"
)

// Passwords of the registries' users; none may ever show in regcred's log.
var passwords = map[string]string{
	"alice": "alice-Pa55-e2e",
	"carol": "carol-Pa55-e2e",
	"bob":   "bob-Pa55-e2e",
}

// env is the shared test bed.
var env envT

type envT struct {
	cp         *testbed.ControlPlane
	regA, regB *testbed.Registry
	// imageA and imageB are pushed to regA and regB.
	imageA, imageB string
	ca             *certgen.CA
	client         client.Client
	app            *app.App
	regcred        *testbed.Regcred
	// metricsURL is regcred's metrics endpoint.
	metricsURL string
	// requests are the API requests regcred made.
	requests *testbed.RequestLog
	logs     *testbed.LogBuffer
}

// ctx is a context for helpers that have no test's.
func (e *envT) ctx() context.Context { return context.Background() }

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	var err error
	env.cp, err = testbed.StartControlPlane(testbed.ControlPlaneOptions{ControllerManager: true})
	if err != nil {
		return 1, err
	}
	defer env.cp.Stop()
	fmt.Fprintf(os.Stderr, "e2e: control plane up in %s\n", time.Since(start).Round(time.Millisecond))

	env.ca, err = certgen.NewCA("regcred-e2e-ca", 24*time.Hour)
	if err != nil {
		return 1, err
	}
	env.regA, err = testbed.StartRegistry(testbed.RegistryOptions{CA: env.ca, Users: map[string]string{"alice": passwords["alice"], "carol": passwords["carol"]}})
	if err != nil {
		return 1, err
	}
	defer env.regA.Stop()
	env.regB, err = testbed.StartRegistry(testbed.RegistryOptions{CA: env.ca, Users: map[string]string{"bob": passwords["bob"]}})
	if err != nil {
		return 1, err
	}
	defer env.regB.Stop()
	if env.imageA, err = env.regA.Push(ctx, "team/app", "v1", "alice", passwords["alice"]); err != nil {
		return 1, err
	}
	if env.imageB, err = env.regB.Push(ctx, "other/tool", "v2", "bob", passwords["bob"]); err != nil {
		return 1, err
	}

	env.client, err = client.New(env.cp.Config, client.Options{})
	if err != nil {
		return 1, err
	}
	if err := setup(ctx); err != nil {
		return 1, err
	}
	code := m.Run()
	// What every test made regcred do, not only those before the check.
	if _, outside := secretReads(); len(outside) > 0 {
		fmt.Fprintf(os.Stderr, "e2e: regcred read Secrets outside its namespace: %q\n", outside)
		code = 1
	}
	cancel()
	env.regcred.Wait()
	// Credentials never appear in regcred's log.
	logs := env.logs.String()
	for user, p := range passwords {
		if strings.Contains(logs, p) {
			fmt.Fprintf(os.Stderr, "e2e: the password of %s appears in regcred's log\n", user)
			code = 1
		}
	}
	if code != 0 && os.Getenv("REGCRED_E2E_LOG") != "" {
		fmt.Fprintln(os.Stderr, testbed.Redact(logs, slices.Collect(maps.Values(passwords))...))
	}
	return code, nil
}

// setup stores the credentials and the first config, starts regcred and
// registers its webhook.
func setup(ctx context.Context) error {
	c := env.client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: regcredNamespace}}); err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: credsSecret, Namespace: regcredNamespace},
		StringData: map[string]string{"reg-a": passwords["alice"], "reg-b": passwords["bob"]},
	}); err != nil {
		return err
	}
	// Left by a registry since removed, before regcred started.
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: staleNamespace}}); err != nil {
		return err
	}
	// As a replica that ran before would have left it: the Secret, and its
	// entry in the index of pull secrets.
	store := &secretstore.Store{API: c, Index: secretstore.NewIndex(c, regcredNamespace)}
	if out, err := store.Apply(ctx, staleNamespace, &pullsecret.Want{Name: "regcred-retired", Registry: "retired", Data: []byte(`{"auths":{}}`)}, false); err != nil || out != secretstore.Created {
		return fmt.Errorf("the stale pull secret: %s, %w", out, err)
	}
	if err := c.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: configName, Namespace: regcredNamespace},
		Data:       map[string]string{"config.yaml": baseConfig()},
	}); err != nil {
		return err
	}

	env.logs = &testbed.LogBuffer{}
	log := zap.New(zap.WriteTo(env.logs), zap.UseDevMode(true), zap.Level(zapcore.Level(-1)))
	ctrl.SetLogger(log)
	klog.SetLogger(log)

	opts := app.DefaultOptions()
	opts.Namespace = regcredNamespace
	opts.ClusterName = clusterName
	opts.ConfigMap = configName
	metricsPort, err := testbed.FreePort()
	if err != nil {
		return err
	}
	env.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	opts.MetricsAddr, opts.ProbeAddr = fmt.Sprintf("127.0.0.1:%d", metricsPort), "0"
	opts.ShutdownTimeout = 5 * time.Second
	opts.CheckInterval = time.Second
	opts.WarnMissingAdminSecrets = true
	env.requests = &testbed.RequestLog{}
	// regcred runs as its own ServiceAccount (all-powerful here: the chart's
	// least privilege is tested in test/chart and test/security).
	self, err := testbed.ServiceAccount(ctx, c, env.cp.Config, regcredNamespace, "regcred", "cluster-admin")
	if err != nil {
		return err
	}
	r, err := testbed.StartRegcred(ctx, env.requests.Wrap(self), env.ca, opts, app.Deps{StatusRefresh: 100 * time.Millisecond})
	if err != nil {
		return err
	}
	env.app = r.App
	env.regcred = r
	if st := env.app.ConfigStatus(); st.LastError != nil {
		return fmt.Errorf("regcred rejected the base config: %w", st.LastError)
	}
	return nil
}

// registryConfig describes one test registry in the config, with extra
// fields after.
func registryConfig(name string, reg *testbed.Registry, user, passwordKey, extra string) string {
	return testbed.RegistryWithCA(name, reg.Host, env.ca.CertPEM, user, credsSecret, passwordKey) + extra
}

func config(registries ...string) string { return testbed.Config(registries...) }

func baseConfig() string {
	return config(
		registryConfig("reg-a", env.regA, "alice", "reg-a", ""),
		registryConfig("reg-b", env.regB, "bob", "reg-b", ""),
	)
}
