package webhookcert

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/regcred/regcred/pkg/certgen"
)

// cluster is an API server for keepers: the Secret and regcred's two
// webhook configurations, whose caBundle patches can be made to fail.
type cluster struct {
	t         *testing.T
	c         client.WithWatch
	failPatch atomic.Bool
	// onPatch, when set, runs before a caBundle patch is applied.
	onPatch func()
	logs    *logBuffer
}

type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	cl := &cluster{t: t, logs: &logBuffer{}}
	cl.c = fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if cl.onPatch != nil {
				cl.onPatch()
			}
			if cl.failPatch.Load() {
				return errors.New("the API server is unavailable")
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
	}).WithObjects(
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "regcred"},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "pods.regcred.io"}}},
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "regcred-pull-secrets"},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{Name: "pull-secrets.regcred.io"}}},
	).Build()
	t.Cleanup(func() {
		assert.NotContains(t, cl.logs.String(), "PRIVATE KEY", "a key is in the log")
	})
	return cl
}

// keeper is a replica's keeper, on the clock *now.
func (cl *cluster) keeper(now *time.Time) *Keeper {
	return &Keeper{
		Reader: cl.c, Writer: cl.c,
		Namespace: "regcred", Name: "regcred-tls",
		Policy:   policy,
		Webhooks: Webhooks{Mutating: "regcred", Validating: "regcred-pull-secrets"},
		Log: funcr.New(func(prefix, args string) {
			cl.logs.mu.Lock()
			defer cl.logs.mu.Unlock()
			cl.logs.b.WriteString(prefix + " " + args + "\n")
		}, funcr.Options{Verbosity: 1}),
		Now: func() time.Time { return *now },
	}
}

func (cl *cluster) secret() *corev1.Secret {
	cl.t.Helper()
	var s corev1.Secret
	require.NoError(cl.t, cl.c.Get(cl.t.Context(), client.ObjectKey{Namespace: "regcred", Name: "regcred-tls"}, &s))
	return &s
}

// bundles are the caBundles of both webhook configurations.
func (cl *cluster) bundles() [][]byte {
	cl.t.Helper()
	var m admissionregistrationv1.MutatingWebhookConfiguration
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	require.NoError(cl.t, cl.c.Get(cl.t.Context(), client.ObjectKey{Name: "regcred"}, &m))
	require.NoError(cl.t, cl.c.Get(cl.t.Context(), client.ObjectKey{Name: "regcred-pull-secrets"}, &v))
	return [][]byte{m.Webhooks[0].ClientConfig.CABundle, v.Webhooks[0].ClientConfig.CABundle}
}

// setBundles sets both caBundles as someone else would.
func (cl *cluster) setBundles(b []byte) {
	cl.t.Helper()
	ctx := cl.t.Context()
	var m admissionregistrationv1.MutatingWebhookConfiguration
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	require.NoError(cl.t, cl.c.Get(ctx, client.ObjectKey{Name: "regcred"}, &m))
	require.NoError(cl.t, cl.c.Get(ctx, client.ObjectKey{Name: "regcred-pull-secrets"}, &v))
	m.Webhooks[0].ClientConfig.CABundle, v.Webhooks[0].ClientConfig.CABundle = b, b
	require.NoError(cl.t, cl.c.Update(ctx, &m))
	require.NoError(cl.t, cl.c.Update(ctx, &v))
}

// trusted reports whether every caBundle trusts the certificate.
func (cl *cluster) trusted(c *x509.Certificate) bool {
	cl.t.Helper()
	for _, b := range cl.bundles() {
		cas, err := parseCerts(b)
		if err != nil || !signedByAny(c, cas, c.NotBefore) {
			return false
		}
	}
	return true
}

func servedBy(t *testing.T, k *Keeper) *x509.Certificate {
	t.Helper()
	c, err := k.GetCertificate(nil)
	if err != nil {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	require.NoError(t, err)
	return leaf
}

func certOf(t *testing.T, s *corev1.Secret) *x509.Certificate {
	t.Helper()
	certs, err := parseCerts(s.Data[corev1.TLSCertKey])
	require.NoError(t, err)
	return certs[0]
}

func casOf(t *testing.T, s *corev1.Secret) []*x509.Certificate {
	t.Helper()
	cas, err := parseCerts(s.Data[CABundleKey])
	require.NoError(t, err)
	return cas
}

func reconcile(t *testing.T, k *Keeper) {
	t.Helper()
	_, err := k.Reconcile(t.Context())
	require.NoError(t, err)
}

// A deleted Secret is made again with a new CA, but the CAs the caBundle
// holds stay in it, and a replica serves the new certificate only once the
// bundle with its CA has had time to reach the API servers: meanwhile it
// serves the one it had, still trusted.
func TestDeletedSecret(t *testing.T) {
	cl := newCluster(t)
	now := t0
	a, b := cl.keeper(&now), cl.keeper(&now)
	reconcile(t, a)
	reconcile(t, b)
	old := certOf(t, cl.secret())
	oldCA := casOf(t, cl.secret())[0]
	require.True(t, servedBy(t, a).Equal(old))
	require.True(t, servedBy(t, b).Equal(old))
	require.True(t, cl.trusted(old))

	require.NoError(t, cl.c.Delete(t.Context(), cl.secret()))
	now = t0.Add(time.Hour)
	cl.onPatch = func() {
		assert.True(t, servedBy(t, a).Equal(old), "the caBundle is set before a new certificate is served")
	}
	reconcile(t, a)
	s := cl.secret()
	cas := casOf(t, s)
	require.Len(t, cas, 2, "the new CA, and the one the caBundle held")
	assert.NotEqual(t, oldCA.Raw, cas[0].Raw)
	assert.Equal(t, oldCA.Raw, cas[1].Raw)
	for _, bundle := range cl.bundles() {
		assert.Equal(t, s.Data[CABundleKey], bundle)
	}
	assert.True(t, cl.trusted(old), "the certificate the replicas serve stays trusted")
	assert.True(t, servedBy(t, a).Equal(old), "the new CA has just joined the caBundle: the old certificate is still served")
	reconcile(t, b)
	assert.True(t, servedBy(t, b).Equal(old))

	now = now.Add(policy.Propagation - time.Second)
	reconcile(t, a)
	assert.True(t, servedBy(t, a).Equal(old))
	now = now.Add(time.Second)
	reconcile(t, a)
	reconcile(t, b)
	assert.True(t, servedBy(t, a).Equal(certOf(t, s)), "served once the caBundle has had time to spread")
	assert.True(t, servedBy(t, b).Equal(certOf(t, s)))
	assert.True(t, cl.trusted(certOf(t, s)))
}

// Made anew, the bundle keeps of the caBundle only regcred's CAs still
// valid: not another's, not an expired one.
func TestMadeAnewKeepsRegcredsValidCAs(t *testing.T) {
	cl := newCluster(t)
	now := t0.Add(48 * time.Hour)
	valid := fresh(t, now.Add(-time.Hour), policy).CAs[0]
	expired := fresh(t, t0, policy).CAs[0]
	foreign, _, err := certgen.SelfSignedCA("another-ca", t0, t0.Add(1000*time.Hour))
	require.NoError(t, err)
	var bundle []byte
	for _, c := range []*x509.Certificate{foreign, expired, valid} {
		bundle = append(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	cl.setBundles(append(bundle, "not a certificate\n"...))
	reconcile(t, cl.keeper(&now))
	cas := casOf(t, cl.secret())
	require.Len(t, cas, 2)
	assert.Equal(t, valid.Raw, cas[1].Raw)
	assert.Contains(t, cl.logs.String(), `"keptCAs"=1`)
}

// A replica serves nothing the caBundle does not trust: when it cannot set
// the caBundle at start, it serves only a certificate the caBundle already
// trusts, and stays unready otherwise.
func TestStartWhenTheCABundleCannotBeSet(t *testing.T) {
	cl := newCluster(t)
	now := t0
	k := cl.keeper(&now)
	cl.failPatch.Store(true)
	cl.onPatch = func() { assert.False(t, k.Ready(), "the caBundle is set before anything is served") }
	_, err := k.Reconcile(t.Context())
	require.ErrorContains(t, err, "the API server is unavailable")
	assert.False(t, k.Ready(), "nothing is served that the caBundle does not trust")

	// Another replica set the caBundle, with a CA more: the patch still
	// fails, but the caBundle trusts the certificate.
	other := fresh(t, t0, policy)
	cl.setBundles(append(bytes.Clone(cl.secret().Data[CABundleKey]), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.CAs[0].Raw})...))
	cl.onPatch = nil
	_, err = k.Reconcile(t.Context())
	require.Error(t, err)
	assert.True(t, k.Ready(), "a certificate the caBundle trusts is served")

	cl.failPatch.Store(false)
	reconcile(t, k)
	for _, bundle := range cl.bundles() {
		assert.Equal(t, cl.secret().Data[CABundleKey], bundle)
	}
}

// The serving certificate moves to a renewed CA only once the keeper has
// seen the caBundle hold it for Propagation, not Propagation after the CA
// was made.
func TestCertificateMovesToTheNewCAOnlyOnceTheBundleHoldsIt(t *testing.T) {
	cl := newCluster(t)
	now := t0
	k := cl.keeper(&now)
	reconcile(t, k)
	now = t0.Add(19 * time.Hour) // the certificate is renewed
	reconcile(t, k)
	cert := certOf(t, cl.secret())

	cl.failPatch.Store(true)
	now = t0.Add(20*time.Hour + time.Minute) // the CA is renewed
	_, err := k.Reconcile(t.Context())
	require.Error(t, err)
	require.Len(t, casOf(t, cl.secret()), 2)
	now = now.Add(2 * policy.Propagation)
	_, err = k.Reconcile(t.Context())
	require.Error(t, err)
	assert.True(t, certOf(t, cl.secret()).Equal(cert), "no move while the caBundle does not hold the new CA")
	assert.True(t, servedBy(t, k).Equal(cert))

	cl.failPatch.Store(false)
	now = now.Add(time.Minute)
	reconcile(t, k)
	require.True(t, cl.trusted(certOf(t, cl.secret())))
	assert.True(t, certOf(t, cl.secret()).Equal(cert), "the caBundle has just been set: no move yet")
	now = now.Add(policy.Propagation - time.Second)
	reconcile(t, k)
	assert.True(t, certOf(t, cl.secret()).Equal(cert))
	now = now.Add(time.Second)
	reconcile(t, k)
	moved := certOf(t, cl.secret())
	assert.False(t, moved.Equal(cert), "moved once the caBundle has held the new CA for Propagation")
	assert.NoError(t, moved.CheckSignatureFrom(casOf(t, cl.secret())[0]))
	assert.True(t, servedBy(t, k).Equal(moved))
}

// A caBundle set back to one without the new CA (another replica's stale
// cache, a configuration replaced) and set again by the keeper holds the
// new CA only since then: the certificate moves one Propagation after
// that, not after the first time.
func TestABundleSetAgainRestartsThePropagation(t *testing.T) {
	cl := newCluster(t)
	now := t0
	k := cl.keeper(&now)
	reconcile(t, k)
	now = t0.Add(19 * time.Hour)
	reconcile(t, k)
	oldBundle := cl.bundles()[0]
	cert := certOf(t, cl.secret())
	now = t0.Add(20*time.Hour + time.Minute) // the CA is renewed, the caBundle set
	reconcile(t, k)
	require.Len(t, casOf(t, cl.secret()), 2)

	now = now.Add(policy.Propagation - time.Minute)
	cl.setBundles(oldBundle)
	reconcile(t, k)
	require.True(t, bytes.Equal(cl.bundles()[0], cl.secret().Data[CABundleKey]), "set again")
	now = now.Add(time.Minute)
	reconcile(t, k)
	assert.True(t, certOf(t, cl.secret()).Equal(cert), "no move one minute after the caBundle was set again")
	assert.True(t, servedBy(t, k).Equal(cert))

	now = now.Add(policy.Propagation)
	reconcile(t, k)
	assert.False(t, certOf(t, cl.secret()).Equal(cert), "moved once the caBundle has held the new CA for Propagation")

	// A caBundle changed but still holding the current CA is no reason to
	// wait again.
	since := k.bundledSince
	cl.setBundles(append(bytes.Clone(cl.secret().Data[CABundleKey]), "\n"...))
	now = now.Add(time.Minute)
	reconcile(t, k)
	assert.Equal(t, since, k.bundledSince)
}

// An unreadable ca-since does not replace the CA: it is written again.
func TestUnreadableCASinceKeepsTheCA(t *testing.T) {
	cl := newCluster(t)
	now := t0
	k := cl.keeper(&now)
	reconcile(t, k)
	before := cl.secret()
	edited := before.DeepCopy()
	edited.Annotations[CASinceAnnotation] = "last Tuesday"
	require.NoError(t, cl.c.Update(t.Context(), edited))
	now = t0.Add(time.Hour)
	reconcile(t, k)
	after := cl.secret()
	assert.Equal(t, before.Data, after.Data)
	assert.Equal(t, now.Format(time.RFC3339), after.Annotations[CASinceAnnotation])
}
