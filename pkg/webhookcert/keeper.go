package webhookcert

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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
	// changes.
	servedPEM []byte
	pokeOnce  sync.Once
	poke      chan struct{}
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

// Reconcile brings the Secret, the served certificate and the caBundles
// in line with the policy once, and returns when to look again.
func (k *Keeper) Reconcile(ctx context.Context) (time.Time, error) {
	now := k.now()
	var secret corev1.Secret
	var m *Material
	var missing string
	switch err := k.Reader.Get(ctx, client.ObjectKey{Namespace: k.Namespace, Name: k.Name}, &secret); {
	case apierrors.IsNotFound(err):
		missing = "no TLS Secret yet"
	case err != nil:
		return now, fmt.Errorf("reading Secret %s/%s: %w", k.Namespace, k.Name, err)
	default:
		var perr error
		if m, perr = Parse(&secret); perr != nil {
			m, missing = nil, "the TLS Secret is unreadable ("+perr.Error()+")"
		}
	}
	d := Decide(now, m, missing, k.Policy)
	if d.Changes() {
		next, err := Apply(now, m, d, k.Policy)
		if err != nil {
			return now, err
		}
		if err := k.write(ctx, &secret, m == nil && missing == "no TLS Secret yet", next); err != nil {
			if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
				// Another replica wrote first: its write comes back through
				// the cache (a poke) and is decided on again.
				k.Log.V(1).Info("Another replica renewed the webhook's TLS material first")
				return now.Add(time.Second), nil
			}
			return now, fmt.Errorf("writing Secret %s/%s: %w", k.Namespace, k.Name, err)
		}
		k.Log.Info("Renewed the webhook's TLS material", "secret", k.Namespace+"/"+k.Name,
			"why", d.Reason, "newCA", d.NewCA, "newCertificate", d.Issue,
			"certificateExpires", next.Cert.NotAfter.UTC(), "caExpires", next.CAs[0].NotAfter.UTC())
		m = next
	}
	if err := k.serve(m); err != nil {
		return now, err
	}
	if k.Metrics != nil {
		k.Metrics.WebhookCertificate(m.Cert.NotAfter, m.CAs[0].NotAfter)
	}
	if err := k.inject(ctx, m.Bundle()); err != nil {
		return now, err
	}
	return d.Next, nil
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

// serve makes the material's certificate the one served.
func (k *Keeper) serve(m *Material) error {
	if bytes.Equal(k.servedPEM, m.CertPEM) && k.served.Load() != nil {
		return nil
	}
	c, err := tls.X509KeyPair(m.CertPEM, m.KeyPEM)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	k.served.Store(&c)
	k.servedPEM = m.CertPEM
	return nil
}

// inject sets the caBundle of every webhook of the configurations to
// bundle, where it differs, with a JSON patch that changes only those
// fields (and fails if the webhooks moved meanwhile).
func (k *Keeper) inject(ctx context.Context, bundle []byte) error {
	var errs []error
	if k.Webhooks.Mutating != "" {
		var c admissionregistrationv1.MutatingWebhookConfiguration
		errs = append(errs, k.injectInto(ctx, &c, k.Webhooks.Mutating, bundle, func() []admissionregistrationv1.WebhookClientConfig {
			var cc []admissionregistrationv1.WebhookClientConfig
			for _, w := range c.Webhooks {
				cc = append(cc, w.ClientConfig)
			}
			return cc
		}, func(i int) string { return c.Webhooks[i].Name }))
	}
	if k.Webhooks.Validating != "" {
		var c admissionregistrationv1.ValidatingWebhookConfiguration
		errs = append(errs, k.injectInto(ctx, &c, k.Webhooks.Validating, bundle, func() []admissionregistrationv1.WebhookClientConfig {
			var cc []admissionregistrationv1.WebhookClientConfig
			for _, w := range c.Webhooks {
				cc = append(cc, w.ClientConfig)
			}
			return cc
		}, func(i int) string { return c.Webhooks[i].Name }))
	}
	return errors.Join(errs...)
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

func (k *Keeper) injectInto(ctx context.Context, obj client.Object, name string, bundle []byte,
	clientConfigs func() []admissionregistrationv1.WebhookClientConfig, webhookName func(int) string,
) error {
	if err := k.Reader.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			// Not installed yet (or being uninstalled): its creation pokes.
			return nil
		}
		return fmt.Errorf("reading %T %s: %w", obj, name, err)
	}
	var ops []patchOp
	for i, cc := range clientConfigs() {
		if bytes.Equal(cc.CABundle, bundle) {
			continue
		}
		ops = append(ops,
			patchOp{Op: "test", Path: fmt.Sprintf("/webhooks/%d/name", i), Value: webhookName(i)},
			patchOp{Op: "add", Path: fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), Value: bundle})
	}
	if len(ops) == 0 {
		return nil
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return err
	}
	if err := k.Writer.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, body)); err != nil {
		return fmt.Errorf("setting the caBundle of %s: %w", name, err)
	}
	k.Log.Info("Set the webhook configuration's caBundle", "configuration", name, "webhooks", len(ops)/2)
	return nil
}
