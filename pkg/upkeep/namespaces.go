package upkeep

import (
	"context"

	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/secretstore"
)

// Namespaces tells what the plan needs of a namespace: its labels. A
// namespace that does not exist (any more) is reported as such.
type Namespaces interface {
	NamespaceLabels(ctx context.Context, name string) (map[string]string, error)
}

// Store writes pull secrets (package secretstore).
type Store interface {
	Apply(ctx context.Context, namespace string, w *pullsecret.Want, dryRun bool) (secretstore.Outcome, error)
	Restore(ctx context.Context, namespace string, w *pullsecret.Want) (secretstore.Outcome, error)
	Delete(ctx context.Context, e secretstore.Entry, secretName string) error
	Forget(ctx context.Context, e secretstore.Entry) error
	// Pending records, unless the index knows it serving e.Hosts, a pull
	// secret that could not be written yet, for the leader's sweeps to
	// write; it keeps the hosts the index knows and adds e.Hosts.
	Pending(ctx context.Context, e secretstore.Entry) error
	// Stale records the pull secret of e pending whatever the index knows
	// of it: someone else changed it, or another replica's write raced
	// with this one's. It keeps the entry's UID and hosts, and adds e.Hosts.
	Stale(ctx context.Context, e secretstore.Entry) error
}

// Recorder counts what the upkeep does.
type Recorder interface {
	SecretEnsured(registry string, outcome secretstore.Outcome)
	SecretDeleted(registry string)
	SecretRestored(registry string)
}

// decision is whether a registry's pull secret belongs in a namespace now,
// with the registry if it does.
type decision struct {
	registry *registries.Registry
	wanted   bool
	// gone is set when the namespace does not exist.
	gone bool
}

// decide asks the plan whether registry's secret belongs in namespace.
func decide(ctx context.Context, set *registries.Set, ns Namespaces, ex plan.Exclusions, namespace, registry string) (decision, error) {
	r := set.Get(registry)
	if r == nil || !r.Manages() {
		return decision{}, nil
	}
	n := plan.Namespace{Name: namespace}
	if !ex[namespace] {
		labels, err := ns.NamespaceLabels(ctx, namespace)
		if isNotFound(err) {
			return decision{gone: true}, nil
		}
		if err != nil {
			return decision{}, err
		}
		n.Labels = labels
	}
	ok, _ := plan.ForNamespace(r, n, ex)
	return decision{registry: r, wanted: ok}, nil
}
