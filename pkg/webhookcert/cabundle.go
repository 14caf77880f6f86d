package webhookcert

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The keeper's side of the webhook configurations: it reads their
// caBundles and sets them.

// inject sets the caBundle of every webhook of the configurations to m's
// bundle, and records since when the keeper has seen them hold its current
// CA: since now if it had to set one that did not (set back by a replica
// whose cache was behind, or a configuration replaced). A configuration
// that does not exist calls no webhook: it holds no bundle, fails
// nothing, and its creation pokes the keeper.
func (k *Keeper) inject(ctx context.Context, m *Material) error {
	bundle := m.Bundle()
	configs, missing, err := k.configurations(ctx)
	errs := []error{err}
	for _, name := range missing {
		k.Log.Info("The webhook configuration does not exist: its caBundle is set once it does", "configuration", name)
	}
	lacked := false
	for _, c := range configs {
		l, err := k.setBundle(ctx, c, bundle, m.CAs[0])
		lacked = lacked || l
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		k.bundledCA = nil
		return err
	}
	if lacked || !bytes.Equal(k.bundledCA, m.CAs[0].Raw) {
		k.bundledCA, k.bundledSince = m.CAs[0].Raw, k.now()
	}
	return nil
}

// configuration is one of the webhook configurations the keeper keeps, as
// read.
type configuration struct {
	name string
	obj  client.Object
	// webhooks are the names of its webhooks, bundles their caBundles.
	webhooks []string
	bundles  [][]byte
}

// configurations reads the webhook configurations the keeper keeps: those
// that exist, and the names of those that do not.
func (k *Keeper) configurations(ctx context.Context) ([]configuration, []string, error) {
	var found []configuration
	var missing []string
	var errs []error
	read := func(kind, name string, obj client.Object, webhooks func() ([]string, [][]byte)) {
		if name == "" {
			return
		}
		switch err := k.Reader.Get(ctx, client.ObjectKey{Name: name}, obj); {
		case apierrors.IsNotFound(err):
			missing = append(missing, name)
		case err != nil:
			errs = append(errs, fmt.Errorf("reading %s %s: %w", kind, name, err))
		default:
			c := configuration{name: name, obj: obj}
			c.webhooks, c.bundles = webhooks()
			found = append(found, c)
		}
	}
	var mc admissionregistrationv1.MutatingWebhookConfiguration
	read("MutatingWebhookConfiguration", k.Webhooks.Mutating, &mc, func() (names []string, bundles [][]byte) {
		for _, w := range mc.Webhooks {
			names, bundles = append(names, w.Name), append(bundles, w.ClientConfig.CABundle)
		}
		return names, bundles
	})
	var vc admissionregistrationv1.ValidatingWebhookConfiguration
	read("ValidatingWebhookConfiguration", k.Webhooks.Validating, &vc, func() (names []string, bundles [][]byte) {
		for _, w := range vc.Webhooks {
			names, bundles = append(names, w.Name), append(bundles, w.ClientConfig.CABundle)
		}
		return names, bundles
	})
	return found, missing, errors.Join(errs...)
}

type patchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

// setBundle sets the caBundle of the configuration's webhooks to bundle,
// where it differs, with a JSON patch that changes only those fields (and
// fails if the webhooks moved meanwhile). lacked says that one of those it
// set did not hold ca.
func (k *Keeper) setBundle(ctx context.Context, c configuration, bundle []byte, ca *x509.Certificate) (lacked bool, err error) {
	var ops []patchOp
	for i, b := range c.bundles {
		if bytes.Equal(b, bundle) {
			continue
		}
		lacked = lacked || !slices.ContainsFunc(certsIn(b), ca.Equal)
		ops = append(ops,
			patchOp{Op: "test", Path: fmt.Sprintf("/webhooks/%d/name", i), Value: c.webhooks[i]},
			patchOp{Op: "add", Path: fmt.Sprintf("/webhooks/%d/clientConfig/caBundle", i), Value: bundle})
	}
	if len(ops) == 0 {
		return false, nil
	}
	body, err := json.Marshal(ops)
	if err != nil {
		return lacked, err
	}
	if err := k.Writer.Patch(ctx, c.obj, client.RawPatch(types.JSONPatchType, body)); err != nil {
		return lacked, fmt.Errorf("setting the caBundle of %s: %w", c.name, err)
	}
	k.Log.Info("Set the webhook configuration's caBundle", "configuration", c.name, "webhooks", len(ops)/2)
	return lacked, nil
}

// caBundlesTrust reports whether the caBundle of every webhook of the
// configurations that exist holds a CA that signed c.
func (k *Keeper) caBundlesTrust(ctx context.Context, now time.Time, c *x509.Certificate) bool {
	configs, _, err := k.configurations(ctx)
	if err != nil {
		return false
	}
	for _, cfg := range configs {
		for _, b := range cfg.bundles {
			if !signedByAny(c, certsIn(b), now) {
				return false
			}
		}
	}
	return true
}

// previousCAs are the CAs regcred made that a caBundle holds and that are
// still valid.
func (k *Keeper) previousCAs(ctx context.Context, now time.Time) ([]*x509.Certificate, error) {
	configs, _, err := k.configurations(ctx)
	if err != nil {
		return nil, err
	}
	var cas []*x509.Certificate
	for _, c := range configs {
		for _, b := range c.bundles {
			for _, ca := range certsIn(b) {
				if ca.IsCA && strings.HasPrefix(ca.Subject.CommonName, caNamePrefix) && now.Before(ca.NotAfter) &&
					!slices.ContainsFunc(cas, ca.Equal) {
					cas = append(cas, ca)
				}
			}
		}
	}
	return cas, nil
}
