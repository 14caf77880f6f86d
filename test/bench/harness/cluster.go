package harness

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/test/testbed"
)

// RegcredNamespace is where the benchmarks run regcred.
const RegcredNamespace = "regcred"

// Cluster is the test bed's API server and etcd, with clients that the
// client side does not slow down, and a CA for webhooks.
type Cluster struct {
	CP     *testbed.ControlPlane
	Config *rest.Config
	Client client.Client
	CS     kubernetes.Interface
	CA     *certgen.CA
	// CertDir holds a serving certificate for 127.0.0.1 (tls.crt, tls.key).
	CertDir string
	Dir     string
}

// StartCluster starts a control plane; dir holds what the benchmark
// writes.
func StartCluster(dir string) (*Cluster, error) {
	cp, err := testbed.StartControlPlane(testbed.ControlPlaneOptions{})
	if err != nil {
		return nil, err
	}
	c := &Cluster{CP: cp, Dir: dir, CertDir: filepath.Join(dir, "certs")}
	c.Config = rest.CopyConfig(cp.Config)
	c.Config.QPS, c.Config.Burst = 1e6, 1e6
	if c.Client, err = client.New(c.Config, client.Options{}); err != nil {
		return nil, c.stop(err)
	}
	if c.CS, err = kubernetes.NewForConfig(c.Config); err != nil {
		return nil, c.stop(err)
	}
	if c.CA, err = certgen.NewCA("regcred-bench", 24*time.Hour); err != nil {
		return nil, c.stop(err)
	}
	pair, err := c.CA.Issue([]string{"127.0.0.1"}, 24*time.Hour)
	if err != nil {
		return nil, c.stop(err)
	}
	if err := os.MkdirAll(c.CertDir, 0o700); err != nil {
		return nil, c.stop(err)
	}
	return c, c.stop(pair.Write(c.CertDir, "tls.crt", "tls.key"))
}

func (c *Cluster) stop(err error) error {
	if err != nil {
		c.CP.Stop()
	}
	return err
}

// Stop stops the control plane.
func (c *Cluster) Stop() { c.CP.Stop() }

// CreateNamespace creates a namespace, with labels.
func (c *Cluster) CreateNamespace(ctx context.Context, name string, labels map[string]string) error {
	err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// SetupRegcred makes regcred's namespace, a Secret of credentials
// (registry-creds) and the config (ConfigMap regcred-config).
func (c *Cluster) SetupRegcred(ctx context.Context, config string, creds map[string]string) error {
	if err := c.CreateNamespace(ctx, RegcredNamespace, nil); err != nil {
		return err
	}
	if err := c.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: RegcredNamespace, Name: "registry-creds"},
		StringData: creds,
	}); err != nil {
		return err
	}
	return c.Client.Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: RegcredNamespace, Name: "regcred-config"},
		Data:       map[string]string{"config.yaml": config},
	})
}

// Regcred is regcred running as its own process, as in a cluster.
type Regcred struct {
	*Process
	// URL is where the webhook admits Pods.
	URL string
	// ReadyURL is its /readyz, MetricsURL its /metrics.
	ReadyURL, MetricsURL string
}

// StartRegcred runs the regcred binary against the cluster with the
// config SetupRegcred made, and args after.
func (c *Cluster) StartRegcred(name, bin string, args, env []string) (*Regcred, error) {
	var ports [3]int
	for i := range ports {
		p, err := testbed.FreePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	all := append([]string{
		"--kubeconfig=" + c.CP.Kubeconfig,
		"--namespace=" + RegcredNamespace,
		"--config-configmap=regcred-config",
		"--cluster-name=bench",
		"--webhook-host=127.0.0.1",
		fmt.Sprintf("--webhook-port=%d", ports[0]),
		"--cert-dir=" + c.CertDir,
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", ports[1]),
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", ports[2]),
		// No registry of the benchmarks exists: no login checks.
		"--check-interval=0",
	}, args...)
	p, err := Start(name, bin, all, append([]string{"POD_NAME=" + name}, env...), filepath.Join(c.Dir, name+".log"))
	if err != nil {
		return nil, err
	}
	return &Regcred{
		Process:    p,
		URL:        fmt.Sprintf("https://127.0.0.1:%d/mutate-v1-pod", ports[0]),
		ReadyURL:   fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1]),
		MetricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[2]),
	}, nil
}

// WaitReady waits until url answers 200 (a webhook's readiness), at most
// timeout, and says how long it took.
func WaitReady(ctx context.Context, c *http.Client, url string, p *Process, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < timeout {
		if p.Exited() {
			return 0, fmt.Errorf("%s exited", p.Name)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := c.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s not ready after %s", p.Name, timeout)
}
