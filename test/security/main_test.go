// Package security proves regcred's least privilege and its behaviour
// under faults on a real control plane: the chart's own RBAC and admission
// policy, tried by impersonating regcred's ServiceAccount; two replicas
// running as their own processes behind a load balancer (a Service without
// kube-proxy), talking to the API server through a link the tests can take
// down.
package security

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/test/testbed"
)

const (
	regcredNS = "regcred"
	// saUser is regcred's ServiceAccount as the chart makes it.
	saUser = "system:serviceaccount:regcred:regcred"
	// excludedNS is in the chart's webhook.excludeNamespaces.
	excludedNS = "monitoring"
	cluster    = "sec"
	// canary is the registry password: it must never show anywhere.
	canary = "Canary-Pa55-7f3a9c"
	user   = "alice"
)

var saGroups = []string{"system:serviceaccounts", "system:serviceaccounts:regcred", "system:authenticated"}

var env struct {
	cp       *testbed.ControlPlane
	admin    client.Client
	reg      *testbed.Registry
	image    string
	ca       *certgen.CA
	apiLink  *testbed.Proxy // regcred's link to the API server
	hooks    *testbed.Proxy // the API server's way to regcred's replicas
	replicas map[string]*replica
	dir      string
	// outputs collects what a credential must never show in.
	outputs []func() string
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "security:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	ctx := context.Background()
	var err error
	env.cp, err = testbed.StartControlPlane(testbed.ControlPlaneOptions{})
	if err != nil {
		return 1, err
	}
	defer env.cp.Stop()
	if env.admin, err = client.New(env.cp.Config, client.Options{}); err != nil {
		return 1, err
	}
	if env.dir, err = os.MkdirTemp("", "regcred-security-"); err != nil {
		return 1, err
	}
	defer func() { _ = os.RemoveAll(env.dir) }()
	if env.ca, err = certgen.NewCA("regcred-security-ca", 24*time.Hour); err != nil {
		return 1, err
	}
	env.reg, err = testbed.StartRegistry(testbed.RegistryOptions{CA: env.ca, Users: map[string]string{user: canary}})
	if err != nil {
		return 1, err
	}
	defer env.reg.Stop()
	if env.image, err = env.reg.Push(ctx, "team/app", "v1", user, canary); err != nil {
		return 1, err
	}
	if err := install(ctx); err != nil {
		return 1, fmt.Errorf("installing the chart: %w", err)
	}
	if err := waitForPolicy(ctx); err != nil {
		return 1, err
	}
	if err := startReplicas(ctx); err != nil {
		return 1, err
	}
	defer func() {
		for _, r := range env.replicas {
			r.Stop()
		}
		env.hooks.Stop()
		env.apiLink.Stop()
	}()
	code := m.Run()
	// No credential in any replica's log, once every test has run (the
	// tests look at what was logged by their time only).
	for _, r := range env.replicas {
		text := r.Log.String()
		joined := strings.Join(strings.Fields(text), "")
		for i, form := range canaryForms() {
			if strings.Contains(text, form) || strings.Contains(joined, form) {
				fmt.Fprintf(os.Stderr, "security: a credential (form %d) in replica %s's log\n", i+1, r.Name)
				code = 1
			}
		}
	}
	for _, r := range env.replicas {
		if rss, err := r.PeakRSS(); err == nil {
			fmt.Fprintf(os.Stderr, "security: replica %s peak RSS %.1f MiB\n", r.Name, float64(rss)/(1<<20))
		}
	}
	if code != 0 && os.Getenv("REGCRED_SECURITY_LOG") != "" {
		for _, r := range env.replicas {
			fmt.Fprintf(os.Stderr, "--- replica %s\n%s\n", r.Name, testbed.Redact(r.Log.String(), canaryForms()...))
		}
	}
	return code, nil
}

// install installs the chart as an admin would, with a registry whose
// password is the canary.
func install(ctx context.Context) error {
	if err := env.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: regcredNS}}); err != nil {
		return err
	}
	if err := env.admin.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: regcredNS, Name: "reg-creds"},
		StringData: map[string]string{"password": canary},
	}); err != nil {
		return err
	}
	for _, ns := range []string{excludedNS, "quiet"} {
		labels := map[string]string{}
		if ns == "quiet" {
			labels["regcred.io/inject"] = "false"
		}
		if err := env.admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}); err != nil {
			return err
		}
	}
	values := map[string]any{
		"clusterName": cluster,
		"webhook":     map[string]any{"excludeNamespaces": []string{excludedNS}},
		"config": map[string]any{"registries": []any{map[string]any{
			"name": "reg", "type": "other", "url": env.reg.Host,
			"connection": "secure-with-ca", "caCert": map[string]any{"value": string(env.ca.CertPEM)},
			"username": map[string]any{"value": user},
			"password": map[string]any{"secretKeyRef": map[string]any{"name": "reg-creds", "key": "password"}},
		}}},
	}
	data, err := yaml.Marshal(values)
	if err != nil {
		return err
	}
	vf := filepath.Join(env.dir, "values.yaml")
	if err := os.WriteFile(vf, data, 0o600); err != nil {
		return err
	}
	helm, err := testbed.Bin("helm")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, helm, "install", "regcred", chartDir(), "--namespace", regcredNS, "--kubeconfig", env.cp.Kubeconfig, "--values", vf)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+env.dir, "HELM_CONFIG_HOME="+env.dir, "HELM_DATA_HOME="+env.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("helm install: %w: %s", err, out)
	}
	return nil
}

func chartDir() string {
	wd, _ := os.Getwd()
	return filepath.Join(wd, "..", "..", "charts", "regcred")
}

// asRegcred returns a client impersonating regcred's ServiceAccount.
func asRegcred() (client.Client, error) {
	cfg := rest.CopyConfig(env.cp.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: saUser, Groups: saGroups}
	return client.New(cfg, client.Options{})
}

// waitForPolicy waits until the chart's admission policy confines regcred:
// it reaches the API server's admission plugin through an informer.
func waitForPolicy(ctx context.Context) error {
	c, err := asRegcred()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "regcred-probe"}, Type: corev1.SecretTypeOpaque}
		err := c.Create(ctx, probe)
		if err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
			return nil
		}
		if err == nil {
			_ = env.admin.Delete(ctx, probe)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the chart's admission policy never took effect")
}
