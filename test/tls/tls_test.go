package tls

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/regcred/regcred/pkg/app"
	"github.com/regcred/regcred/pkg/webhookcert"
	"github.com/regcred/regcred/test/testbed"
)

const (
	regcredNS  = "regcred"
	tlsSecret  = "regcred-tls"
	password   = "tls-test-Pa55"
	eventually = 30 * time.Second
	tick       = 50 * time.Millisecond
)

const config = `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- {name: reg, type: other, url: reg.example.com, default: true, username: {value: u}, password: {value: ` + password + `}}
`

// replica is one regcred running in this process.
type replica struct {
	app  *app.App
	port int
}

// start runs a replica keeping its TLS material in tlsSecret, with
// lifetimes short enough to renew within the test.
func start(t *testing.T, ctx context.Context, stop context.CancelFunc, logs *testbed.LogBuffer) replica {
	t.Helper()
	opts := app.DefaultOptions()
	opts.Namespace = regcredNS
	opts.ConfigSecret = "regcred-config"
	opts.CheckInterval = 0
	opts.MetricsAddr, opts.ProbeAddr = "0", "0"
	opts.ShutdownTimeout = 5 * time.Second
	opts.LeaderElectID = "regcred"
	opts.TLSSecret = tlsSecret
	opts.TLSHosts = []string{"127.0.0.1"}
	opts.MutatingWebhook, opts.ValidatingWebhook = "regcred", "regcred-pull-secrets"
	opts.TLSCertValidity, opts.TLSCAValidity, opts.TLSCAPropagation = 30*time.Second, 45*time.Second, 3*time.Second
	port, err := testbed.FreePort()
	require.NoError(t, err)
	opts.WebhookHost, opts.WebhookPort = "127.0.0.1", port
	ctrl.SetLogger(zap.New(zap.WriteTo(logs), zap.UseDevMode(true), zap.Level(zapcore.Level(-1))))
	a, err := app.New(opts, cp.Config, app.Deps{})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- a.Start(ctx) }()
	// Stopped before it is waited for: cleanups run last first, and a
	// test that fails early has not stopped the replicas itself.
	t.Cleanup(func() { stop(); assert.NoError(t, <-done) })
	return replica{app: a, port: port}
}

// served returns the certificate a replica serves.
func served(t *testing.T, port int) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the certificate served, trusts nothing
	if err != nil {
		return nil
	}
	defer func() { _ = conn.Close() }()
	return conn.ConnectionState().PeerCertificates[0]
}

func secretCert(s *corev1.Secret) *x509.Certificate {
	block, _ := pem.Decode(s.Data[corev1.TLSCertKey])
	if block == nil {
		return nil
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	return c
}

// trusts reports whether the caBundle bundle trusts the certificate c at
// now, as the API server checks it.
func trusts(bundle []byte, c *x509.Certificate, now time.Time) bool {
	if now.Before(c.NotBefore) || !now.Before(c.NotAfter) {
		return false
	}
	for {
		var block *pem.Block
		if block, bundle = pem.Decode(bundle); block == nil {
			return false
		}
		ca, err := x509.ParseCertificate(block.Bytes)
		if err == nil && ca.IsCA && !now.Before(ca.NotBefore) && now.Before(ca.NotAfter) && c.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
}

// failOpen is the API server's count of calls to regcred's Pod webhook
// that failed and let the Pod through unchanged.
func failOpen(t *testing.T, cs *kubernetes.Clientset) float64 {
	t.Helper()
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(t.Context())
	require.NoError(t, err)
	var n float64
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "apiserver_admission_webhook_fail_open_count{") && strings.Contains(line, `name="pods.regcred.io"`) {
			var v float64
			_, _ = fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v)
			n += v
		}
	}
	return n
}

// TestSelfManagedTLS: two replicas keep one CA and certificate in a
// Secret and set the webhook configurations' caBundle; Pods created
// without pause through several certificate renewals and a CA renewal
// all get their pull secret, and the API server never fails open.
func TestSelfManagedTLS(t *testing.T) {
	ctx := t.Context()
	c, err := client.New(cp.Config, client.Options{})
	require.NoError(t, err)
	cs, err := kubernetes.NewForConfig(cp.Config)
	require.NoError(t, err)
	for _, ns := range []string{regcredNS, "apps"} {
		require.NoError(t, c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}))
	}
	require.NoError(t, c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred-config", Namespace: regcredNS},
		StringData: map[string]string{"config.yaml": config},
	}))
	logs := &testbed.LogBuffer{}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	t.Cleanup(stop)
	a := start(t, runCtx, stop, logs)
	b := start(t, runCtx, stop, logs)
	self, err := testbed.WhoAmI(ctx, cp.Config)
	require.NoError(t, err)
	// Registered as the chart does, without a caBundle: regcred sets it.
	require.NoError(t, testbed.Register(ctx, c, fmt.Sprintf("https://127.0.0.1:%d", a.port), nil, regcredNS, self))

	bundle := func() ([]byte, []byte) {
		var m admissionregistrationv1.MutatingWebhookConfiguration
		var v admissionregistrationv1.ValidatingWebhookConfiguration
		if c.Get(ctx, client.ObjectKey{Name: "regcred"}, &m) != nil || c.Get(ctx, client.ObjectKey{Name: "regcred-pull-secrets"}, &v) != nil {
			return nil, nil
		}
		return m.Webhooks[0].ClientConfig.CABundle, v.Webhooks[0].ClientConfig.CABundle
	}
	var secret corev1.Secret
	require.Eventually(t, func() bool {
		if c.Get(ctx, client.ObjectKey{Namespace: regcredNS, Name: tlsSecret}, &secret) != nil {
			return false
		}
		m, v := bundle()
		return bytes.Equal(m, secret.Data[webhookcert.CABundleKey]) && bytes.Equal(v, secret.Data[webhookcert.CABundleKey])
	}, eventually, tick, "regcred never made its TLS Secret and set both caBundles")

	t.Run("both replicas serve the Secret's certificate", func(t *testing.T) {
		require.Eventually(t, func() bool {
			require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: regcredNS, Name: tlsSecret}, &secret))
			want := secretCert(&secret)
			ca, cb := served(t, a.port), served(t, b.port)
			return want != nil && ca != nil && cb != nil && ca.Equal(want) && cb.Equal(want)
		}, eventually, tick)
	})

	t.Run("no admission fails through renewals of the certificate and the CA", func(t *testing.T) {
		before := failOpen(t, cs)
		certs, cas := map[string]bool{}, map[string]bool{}
		var created, withSecret int
		deadline := time.Now().Add(50 * time.Second)
		for time.Now().Before(deadline) {
			p, err := cs.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "app-"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "reg.example.com/team/app:v1"}}},
			}, metav1.CreateOptions{})
			require.NoError(t, err)
			created++
			if len(p.Spec.ImagePullSecrets) == 1 && p.Spec.ImagePullSecrets[0].Name == "regcred-reg" {
				withSecret++
			}
			if cert := served(t, a.port); cert != nil {
				certs[cert.SerialNumber.String()] = true
				cas[string(cert.AuthorityKeyId)] = true
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("%d Pods created over 50s, %d with their pull secret; %d certificates and %d CAs served", created, withSecret, len(certs), len(cas))
		assert.Equal(t, created, withSecret, "every Pod got its pull secret")
		assert.Equal(t, before, failOpen(t, cs), "the API server never failed open")
		assert.GreaterOrEqual(t, len(certs), 3, "the certificate was renewed")
		assert.GreaterOrEqual(t, len(cas), 2, "the CA was renewed")
	})

	// admitThrough creates Pods without pause, and looks at what both
	// replicas serve, from lag before act until done says so (within
	// eventually) and one second more. It checks that every Pod got its
	// pull secret, that the API server never failed open, and that a
	// replica only ever served a certificate that both the caBundle then
	// and the caBundle of lag before trust: an API server that loads a
	// caBundle up to lag late (less than --tls-ca-propagation) trusts it.
	admitThrough := func(t *testing.T, name string, act func(), done func() bool) {
		t.Helper()
		const lag = 2 * time.Second
		type snapshot struct {
			at      time.Time
			bundles [2][]byte
		}
		var history []snapshot
		// then is the caBundles of about lag ago, if looked at then.
		then := func(now time.Time) ([2][]byte, bool) {
			for i := len(history) - 1; i >= 0; i-- {
				if h := history[i]; !h.at.After(now.Add(-lag)) {
					return h.bundles, h.at.After(now.Add(-lag - 300*time.Millisecond))
				}
			}
			return [2][]byte{}, false
		}
		before := failOpen(t, cs)
		var created, withSecret int
		var untrusted []string
		start, acted, doneAt := time.Now(), false, time.Time{}
		for {
			now := time.Now()
			if !acted && now.Sub(start) > lag+500*time.Millisecond {
				act()
				acted = true
			}
			if (!doneAt.IsZero() && now.Sub(doneAt) > time.Second) || now.Sub(start) > lag+eventually {
				break
			}
			certs := []*x509.Certificate{served(t, a.port), served(t, b.port)}
			m, v := bundle()
			history = append(history, snapshot{now, [2][]byte{m, v}})
			bundles := [][]byte{m, v}
			if old, known := then(now); known {
				bundles = append(bundles, old[:]...)
			}
			for i, cert := range certs {
				if cert == nil {
					continue
				}
				for _, bb := range bundles {
					if !trusts(bb, cert, now) {
						what := fmt.Sprintf("replica %d serves certificate %s", i, cert.SerialNumber)
						if !slices.ContainsFunc(untrusted, func(u string) bool { return strings.HasSuffix(u, what) }) {
							untrusted = append(untrusted, now.Format(time.StampMilli)+": "+what)
						}
						break
					}
				}
			}
			p, err := cs.CoreV1().Pods("apps").Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-"},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "reg.example.com/team/app:v1"}}},
			}, metav1.CreateOptions{})
			require.NoError(t, err)
			created++
			if len(p.Spec.ImagePullSecrets) == 1 && p.Spec.ImagePullSecrets[0].Name == "regcred-reg" {
				withSecret++
			}
			if acted && doneAt.IsZero() && done() {
				doneAt = time.Now()
			}
			time.Sleep(50 * time.Millisecond)
		}
		require.False(t, doneAt.IsZero(), "not done within %s", eventually)
		t.Logf("%d Pods created, %d with their pull secret", created, withSecret)
		assert.Equal(t, created, withSecret, "every Pod got its pull secret")
		assert.Equal(t, before, failOpen(t, cs), "the API server never failed open")
		assert.Empty(t, untrusted, "a certificate served that the caBundle, now or %s before, does not trust", lag)
	}
	// remade reports whether both replicas serve a certificate of a CA the
	// Secret has, first, in place of the bundle old, and both caBundles are
	// the Secret's.
	remade := func(old []byte) bool {
		var s corev1.Secret
		if c.Get(ctx, client.ObjectKey{Namespace: regcredNS, Name: tlsSecret}, &s) != nil || bytes.Equal(s.Data[webhookcert.CABundleKey], old) {
			return false
		}
		if m, v := bundle(); !bytes.Equal(m, s.Data[webhookcert.CABundleKey]) || !bytes.Equal(v, s.Data[webhookcert.CABundleKey]) {
			return false
		}
		block, _ := pem.Decode(s.Data[webhookcert.CABundleKey])
		if block == nil {
			return false
		}
		ca, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return false
		}
		for _, port := range []int{a.port, b.port} {
			if cert := served(t, port); cert == nil || cert.CheckSignatureFrom(ca) != nil {
				return false
			}
		}
		return true
	}

	t.Run("a deleted Secret is made again, and no admission fails", func(t *testing.T) {
		var old []byte
		admitThrough(t, "after-delete", func() {
			require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: regcredNS, Name: tlsSecret}, &secret))
			old = secret.Data[webhookcert.CABundleKey]
			require.NoError(t, c.Delete(ctx, &secret))
		}, func() bool { return remade(old) })
	})

	t.Run("an unreadable Secret is replaced, says why, and no admission fails", func(t *testing.T) {
		var old []byte
		admitThrough(t, "after-break", func() {
			require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: regcredNS, Name: tlsSecret}, &secret))
			old = secret.Data[webhookcert.CABundleKey]
			broken := secret.DeepCopy()
			broken.Data[webhookcert.CAKeyKey] = []byte("not a key")
			require.NoError(t, c.Patch(ctx, broken, client.MergeFrom(&secret)))
		}, func() bool { return remade(old) })
		var s corev1.Secret
		require.NoError(t, c.Get(ctx, client.ObjectKey{Namespace: regcredNS, Name: tlsSecret}, &s))
		assert.NotEqual(t, []byte("not a key"), s.Data[webhookcert.CAKeyKey])
		// Logged just after the write that the test saw.
		assert.Eventually(t, func() bool {
			return strings.Contains(logs.String(), "the TLS Secret is unreadable (ca.key: no PEM key)")
		}, eventually, tick, "the log says why the material was made anew")
	})

	stop()
	// No key and no password in the log.
	out := logs.String()
	assert.False(t, strings.Contains(out, password), "the password is in the log")
	assert.False(t, strings.Contains(out, "PRIVATE KEY"), "a key is in the log")
	assert.True(t, strings.Contains(out, "Renewed the webhook's TLS material"), "renewals are logged")
}
