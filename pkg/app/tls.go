package app

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/regcred/regcred/pkg/webhookcert"
)

// The webhook's TLS material comes from --cert-dir (cert-manager, or the
// admin's own), or, with --tls-secret, from regcred itself
// (webhookcert.Keeper): a CA and a serving certificate in that Secret,
// served from memory, renewed before they expire, the CA kept in the
// webhook configurations' caBundle.

// selfManagedTLS reports whether regcred keeps its own TLS material.
func (o *Options) selfManagedTLS() bool { return o.TLSSecret != "" }

// tlsOptions configures the webhook server's TLS.
func (a *App) tlsOptions() []func(*tls.Config) {
	opts := []func(*tls.Config){func(c *tls.Config) {
		// HTTP/2 off: it is not needed and has had denial-of-service flaws.
		c.NextProtos = []string{"http/1.1"}
	}}
	if a.opts.selfManagedTLS() {
		a.tls = &webhookcert.Keeper{}
		opts = append(opts, func(c *tls.Config) { c.GetCertificate = a.tls.GetCertificate })
	}
	return opts
}

// tlsCache adds to the cache the webhook configurations whose caBundle
// regcred keeps, each by its name only (RBAC allows regcred those names).
func (o *Options) tlsCache(byObject map[client.Object]cache.ByObject) {
	if !o.selfManagedTLS() {
		return
	}
	if o.MutatingWebhook != "" {
		byObject[&admissionregistrationv1.MutatingWebhookConfiguration{}] = cache.ByObject{Field: fields.OneTermEqualSelector("metadata.name", o.MutatingWebhook)}
	}
	if o.ValidatingWebhook != "" {
		byObject[&admissionregistrationv1.ValidatingWebhookConfiguration{}] = cache.ByObject{Field: fields.OneTermEqualSelector("metadata.name", o.ValidatingWebhook)}
	}
}

// newTLS wires the keeper of the TLS material, on every replica: it looks
// again whenever its Secret or a webhook configuration changes.
func (a *App) newTLS(*rest.Config) error {
	if !a.opts.selfManagedTLS() {
		return nil
	}
	k := a.tls
	k.Reader, k.Writer = a.mgr.GetCache(), a.mgr.GetClient()
	k.Namespace, k.Name = a.opts.Namespace, a.opts.TLSSecret
	k.Policy = webhookcert.Policy{
		Hosts:        a.opts.TLSHosts,
		CAValidity:   a.opts.TLSCAValidity,
		CertValidity: a.opts.TLSCertValidity,
		Propagation:  a.opts.TLSCAPropagation,
	}
	k.Webhooks = webhookcert.Webhooks{Mutating: a.opts.MutatingWebhook, Validating: a.opts.ValidatingWebhook}
	k.Metrics = a.metrics
	k.Log = ctrllog.Log.WithName("tls")
	poke := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { k.Poke() },
		UpdateFunc: func(any, any) { k.Poke() },
		DeleteFunc: func(any) { k.Poke() },
	}
	objs := []client.Object{&corev1.Secret{}}
	if a.opts.MutatingWebhook != "" {
		objs = append(objs, &admissionregistrationv1.MutatingWebhookConfiguration{})
	}
	if a.opts.ValidatingWebhook != "" {
		objs = append(objs, &admissionregistrationv1.ValidatingWebhookConfiguration{})
	}
	for _, obj := range objs {
		inf, err := a.mgr.GetCache().GetInformer(context.Background(), obj)
		if err != nil {
			return err
		}
		var h toolscache.ResourceEventHandler = poke
		if _, ok := obj.(*corev1.Secret); ok {
			h = secretNamed(a.opts.TLSSecret, k.Poke)
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	if err := a.run(k); err != nil {
		return err
	}
	return a.mgr.AddReadyzCheck("tls", func(*http.Request) error {
		if !k.Ready() {
			return errors.New("no serving certificate yet")
		}
		return nil
	})
}

// secretNamed calls f on every event of the Secret named name.
func secretNamed(name string, f func()) toolscache.ResourceEventHandler {
	return toolscache.FilteringResourceEventHandler{
		FilterFunc: func(obj any) bool {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			o, ok := obj.(client.Object)
			return ok && o.GetName() == name
		},
		Handler: toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { f() },
			UpdateFunc: func(any, any) { f() },
			DeleteFunc: func(any) { f() },
		},
	}
}
