package webhookcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Webhooks names the webhook configurations whose caBundle the keeper
// keeps (empty names are left alone).
type Webhooks struct {
	Mutating, Validating string
}

// Metrics is what the keeper reports.
type Metrics interface {
	// WebhookCertificate records when the served certificate and the
	// current CA expire.
	WebhookCertificate(certExpiry, caExpiry time.Time)
}

// Keeper keeps the TLS material in a Secret and serves it.
type Keeper struct {
	// Reader reads the Secret and the webhook configurations (a cache);
	// Writer writes them.
	Reader client.Reader
	Writer client.Client
	// Namespace and Name locate the Secret.
	Namespace, Name string
	Policy          Policy
	Webhooks        Webhooks
	Metrics         Metrics
	Log             logr.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time

	served atomic.Pointer[tls.Certificate]
	// servedPEM is the certificate served, to load a new one only when it
	// changes, and servedCert that certificate.
	servedPEM  []byte
	servedCert *x509.Certificate
	// bundledCA is the CA (DER) the keeper last saw in the caBundle of
	// every webhook configuration, since bundledSince; nil after it failed
	// to set them.
	bundledCA    []byte
	bundledSince time.Time
	pokeOnce     sync.Once
	poke         chan struct{}
}

func (k *Keeper) now() time.Time {
	if k.Now != nil {
		return k.Now()
	}
	return time.Now()
}

func (k *Keeper) pokes() chan struct{} {
	k.pokeOnce.Do(func() { k.poke = make(chan struct{}, 1) })
	return k.poke
}

// Poke asks the keeper to look again (the Secret or a webhook
// configuration changed).
func (k *Keeper) Poke() {
	select {
	case k.pokes() <- struct{}{}:
	default:
	}
}

// GetCertificate serves the current certificate (tls.Config's).
func (k *Keeper) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := k.served.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no serving certificate yet")
}

// Ready reports whether a certificate is served.
func (k *Keeper) Ready() bool { return k.served.Load() != nil }

// NeedLeaderElection is false: every replica serves, and any of them
// may renew (the API server's optimistic concurrency keeps one write).
func (k *Keeper) NeedLeaderElection() bool { return false }

// Start keeps the material until ctx ends.
func (k *Keeper) Start(ctx context.Context) error {
	backoff := time.Second
	for {
		next, err := k.Reconcile(ctx)
		wait := time.Until(next)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			k.Log.Error(err, "Keeping the webhook's TLS material; retrying", "secret", k.Namespace+"/"+k.Name, "in", backoff)
			wait, backoff = backoff, min(2*backoff, 30*time.Second)
		} else {
			backoff = time.Second
		}
		// A clock that jumps, or a renewal far ahead: look at least hourly.
		wait = min(max(wait, 0), time.Hour)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-k.pokes():
		case <-timer.C:
		}
		timer.Stop()
	}
}

// Reconcile brings the Secret, the caBundles and the served certificate
// in line with the policy once, in that order, and returns when to look
// again.
func (k *Keeper) Reconcile(ctx context.Context) (time.Time, error) {
	now := k.now()
	var secret corev1.Secret
	var m *Material
	var missing string
	found := true
	switch err := k.Reader.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.Name}, &secret); {
	case apierrors.IsNotFound(err):
		found, missing = false, "no TLS Secret yet"
	case err != nil:
		return now, fmt.Errorf("reading Secret %s/%s: %w", k.Namespace, k.Name, err)
	default:
		var perr error
		if m, perr = Parse(&secret); perr != nil {
			m, missing = nil, "the TLS Secret is unreadable ("+perr.Error()+")"
		}
	}
	d := Decide(now, m, missing, k.inBundleSince(m), k.Policy)
	if d.Changes() {
		base, kept := m, 0
		if m == nil {
			// Made anew: regcred's earlier CAs that the caBundle still holds
			// stay in the bundle, so that the certificates the replicas
			// serve stay trusted until they move to the new one.
			cas, err := k.previousCAs(ctx, now)
			if err != nil {
				return now, err
			}
			if len(cas) > 0 {
				base, kept = &Material{CAs: cas}, len(cas)
			}
		}
		next, err := Apply(now, base, d, k.Policy)
		if err != nil {
			return now, err
		}
		if err := k.write(ctx, &secret, !found, next); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
				// Another replica wrote first: its write comes back through
				// the cache (a poke) and is decided on again.
				k.Log.V(1).Info("Another replica renewed the webhook's TLS material first")
				return now.Add(time.Second), nil
			}
			return now, fmt.Errorf("writing Secret %s/%s: %w", k.Namespace, k.Name, err)
		}
		k.Log.Info("Renewed the webhook's TLS material", "secret", k.Namespace+"/"+k.Name,
			"why", d.Reason, "newCA", d.NewCA, "newCertificate", d.Issue, "keptCAs", kept,
			"certificateExpires", next.Cert.NotAfter.UTC(), "caExpires", next.CAs[0].NotAfter.UTC())
		m = next
	}
	// The caBundle first: a certificate is served once it holds its CA.
	injectErr := k.inject(ctx, m)
	hold, err := k.serve(ctx, now, m, injectErr == nil)
	if err != nil {
		return now, errors.Join(injectErr, err)
	}
	if k.Metrics != nil && k.servedCert != nil {
		k.Metrics.WebhookCertificate(k.servedCert.NotAfter, m.CAs[0].NotAfter)
	}
	if injectErr != nil {
		return now, injectErr
	}
	if !hold.IsZero() && hold.Before(d.Next) {
		return hold, nil
	}
	return d.Next, nil
}

// inBundleSince is since when the keeper has seen m's current CA in every
// caBundle (zero: it has not, or has failed to set them since).
func (k *Keeper) inBundleSince(m *Material) time.Time {
	if m == nil || k.bundledCA == nil || !bytes.Equal(k.bundledCA, m.CAs[0].Raw) {
		return time.Time{}
	}
	return k.bundledSince
}

// write creates or updates the Secret with the material; an update is
// bound to the resourceVersion read, so that of two replicas renewing at
// once only one wins.
func (k *Keeper) write(ctx context.Context, read *corev1.Secret, create bool, m *Material) error {
	data, err := m.Data()
	if err != nil {
		return err
	}
	if create {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: k.Namespace, Name: k.Name,
				Labels:      map[string]string{"app.kubernetes.io/managed-by": "regcred", "app.kubernetes.io/component": "webhook-tls"},
				Annotations: map[string]string{CASinceAnnotation: m.CASince.UTC().Format(time.RFC3339)}},
			Type: corev1.SecretTypeTLS,
			Data: data,
		}
		return k.Writer.Create(ctx, s)
	}
	s := read.DeepCopy()
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[CASinceAnnotation] = m.CASince.UTC().Format(time.RFC3339)
	s.Data = data
	if s.Type != corev1.SecretTypeTLS {
		// The type cannot change: start again with a new Secret.
		if err := k.Writer.Delete(ctx, read, client.Preconditions{UID: &read.UID, ResourceVersion: &read.ResourceVersion}); err != nil {
			return err
		}
		return k.write(ctx, nil, true, m)
	}
	return k.Writer.Update(ctx, s)
}

// serve makes m's certificate the one served, unless the API servers may
// not trust it yet, and returns until when it keeps the one it serves
// instead (zero: it does not). bundled tells whether the keeper has just
// set every caBundle to m's bundle.
func (k *Keeper) serve(ctx context.Context, now time.Time, m *Material, bundled bool) (time.Time, error) {
	if k.servedCert != nil && bytes.Equal(k.servedPEM, m.CertPEM) {
		return time.Time{}, nil
	}
	c, err := tls.X509KeyPair(m.CertPEM, m.KeyPEM)
	if err != nil {
		return time.Time{}, fmt.Errorf("serving certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return time.Time{}, fmt.Errorf("serving certificate: %w", err)
	}
	if k.servedCert == nil {
		// Nothing served yet. A certificate the caBundle does not trust
		// fails the API server's calls as surely as none, and does worse:
		// the replica turns ready and is sent calls another replica could
		// answer. So, the caBundle not set, only a certificate it already
		// trusts is served; otherwise the replica stays unready and tries
		// again.
		if !bundled && !k.caBundlesTrust(ctx, now, leaf) {
			return time.Time{}, nil
		}
	} else if until := k.keepServing(now, m); now.Before(until) {
		return until, nil
	}
	k.served.Store(&c)
	k.servedPEM, k.servedCert = m.CertPEM, leaf
	return time.Time{}, nil
}

// keepServing is until when the certificate served stays rather than m's:
// while m's is signed by a CA the keeper has not yet seen in every
// caBundle for Propagation, and the one served is signed by an older CA
// of the bundle and not about to expire.
func (k *Keeper) keepServing(now time.Time, m *Material) time.Time {
	served, p := k.servedCert, k.Policy.Propagation
	if !m.SignedByCurrent() || served.CheckSignatureFrom(m.CAs[0]) == nil || !signedByAny(served, m.CAs[1:], now) {
		return time.Time{}
	}
	until := served.NotAfter.Add(-p)
	if since := k.inBundleSince(m); !since.IsZero() {
		if t := later(m.CASince, since).Add(p); t.Before(until) {
			until = t
		}
	}
	return until
}
