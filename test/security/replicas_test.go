package security

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/test/testbed"
)

// replica is a regcred process and how to reach it.
type replica struct {
	*testbed.Process
	webhookPort int
	args        []string
}

// startReplicas starts two replicas as the chart's ServiceAccount, behind
// a load balancer the API server calls, and registers them.
func startReplicas(ctx context.Context) error {
	api, err := url.Parse(env.cp.Config.Host)
	if err != nil {
		return err
	}
	if env.apiLink, err = testbed.StartProxy(testbed.Backend{Addr: api.Host}); err != nil {
		return err
	}
	kubeconfig, err := testbed.ImpersonatingKubeconfig(env.cp.Kubeconfig, "https://"+env.apiLink.Addr, saUser, saGroups, env.dir)
	if err != nil {
		return err
	}
	certDir := filepath.Join(env.dir, "certs")
	pair, err := env.ca.Issue([]string{"127.0.0.1"}, 24*time.Hour)
	if err != nil {
		return err
	}
	if err := pair.Write(certDir, "tls.crt", "tls.key"); err != nil {
		return err
	}
	env.replicas = map[string]*replica{}
	var backends []testbed.Backend
	for _, name := range []string{"replica-a", "replica-b"} {
		r, err := newReplica(name, kubeconfig, certDir)
		if err != nil {
			return err
		}
		if err := r.start(); err != nil {
			return err
		}
		env.replicas[name] = r
		env.outputs = append(env.outputs, r.Log.String)
		backends = append(backends, testbed.Backend{Addr: fmt.Sprintf("127.0.0.1:%d", r.webhookPort), Ready: r.ProbeURL})
	}
	if env.hooks, err = testbed.StartProxy(backends...); err != nil {
		return err
	}
	// Two minutes: the first start on a loaded machine, caches and all.
	if err := waitReady(2, 2*time.Minute); err != nil {
		return err
	}
	return testbed.Register(ctx, env.admin, "https://"+env.hooks.Addr, env.ca.CertPEM, regcredNS, saUser)
}

func newReplica(name, kubeconfig, certDir string) (*replica, error) {
	ports := make([]int, 3)
	for i := range ports {
		p, err := testbed.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	r := &replica{webhookPort: ports[0]}
	r.args = []string{
		"--kubeconfig=" + kubeconfig,
		"--namespace=" + regcredNS, "--config-configmap=regcred-config", "--cluster-name=" + cluster,
		"--exclude-namespaces=" + excludedNS,
		"--leader-election-id=regcred", "--last-good-config-secret=regcred-last-good-config",
		"--webhook-host=127.0.0.1", fmt.Sprintf("--webhook-port=%d", ports[0]), "--cert-dir=" + certDir,
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[1]),
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[2]),
		"--check-interval=2s", "--graceful-shutdown-timeout=3s",
		// The highest level: no credential may show even so.
		"--zap-log-level=10",
	}
	r.Process = &testbed.Process{Name: name, ProbeURL: fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[2]),
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1])}
	return r, nil
}

// start runs (or runs again) the replica's process, keeping its log.
func (r *replica) start() error {
	p, err := testbed.StartProcess(r.Name, r.args, r.Log)
	if err != nil {
		return err
	}
	p.ProbeURL, p.MetricsURL = r.ProbeURL, r.MetricsURL
	r.Process = p
	return nil
}

// waitReady waits until n replicas answer their readiness probe.
func waitReady(n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	var why []string
	for time.Now().Before(deadline) {
		ready := 0
		why = why[:0]
		for name, r := range env.replicas {
			switch resp, err := http.Get(r.ProbeURL); {
			case err != nil:
				why = append(why, fmt.Sprintf("%s: %v (exited: %t)", name, err, r.Exited()))
			case resp.StatusCode == http.StatusOK:
				_ = resp.Body.Close()
				ready++
			default:
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				_ = resp.Body.Close()
				why = append(why, fmt.Sprintf("%s: HTTP %d: %s", name, resp.StatusCode, strings.TrimSpace(string(body))))
			}
		}
		if ready >= n && env.hooks != nil && env.hooks.Ready() >= n || ready >= n && env.hooks == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	// What each replica last said, and the end of its log (no credential
	// in it: the canary is redacted).
	for name, r := range env.replicas {
		lines := strings.Split(testbed.Redact(r.Log.String(), canaryForms()...), "\n")
		why = append(why, fmt.Sprintf("--- the end of %s's log:\n%s", name, strings.Join(lines[max(0, len(lines)-25):], "\n")))
	}
	return fmt.Errorf("%d replicas not ready within %s:\n%s", n, within, strings.Join(why, "\n"))
}

// leader returns the replica that holds the lease.
func leader(ctx context.Context) (*replica, error) {
	var lease coordinationv1.Lease
	if err := env.admin.Get(ctx, client.ObjectKey{Namespace: regcredNS, Name: "regcred"}, &lease); err != nil {
		return nil, err
	}
	if lease.Spec.HolderIdentity == nil {
		return nil, fmt.Errorf("no leader yet")
	}
	r, ok := env.replicas[*lease.Spec.HolderIdentity]
	if !ok {
		return nil, fmt.Errorf("leader %q is no replica of this test", *lease.Spec.HolderIdentity)
	}
	return r, nil
}
