package upkeep

import (
	"context"
	"errors"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
)

// allSecrets is the request that syncs every managed Secret; it cannot be
// the name of a Secret.
var allSecrets = reconcile.Request{NamespacedName: client.ObjectKey{Name: "*all*"}}

// Recorder counts what the reconciler does.
type Recorder interface {
	SecretEnsured(registry string, outcome pullsecret.Outcome)
	SecretDeleted(registry string)
}

// Namespaces tells the labels of a namespace.
type Namespaces interface {
	NamespaceLabels(ctx context.Context, name string) (map[string]string, error)
}

// Reconciler syncs managed pull secrets with the current config. It runs
// on the leader only.
type Reconciler struct {
	// Namespaces reads namespace labels, for registries scoped to some.
	Namespaces Namespaces
	// Exclusions are the namespaces regcred never serves.
	Exclusions plan.Exclusions
	// Registries returns the current set; HasConfig reports whether a good
	// config was ever loaded (before that, nothing is deleted).
	Registries func() *registries.Set
	HasConfig  func() bool
	// Cache holds the managed Secrets.
	Cache   client.Reader
	Ensurer *pullsecret.Ensurer
	Metrics Recorder
	// Resync is how often every managed Secret is checked even without a change.
	Resync time.Duration

	changes chan event.TypedGenericEvent[*registries.Set]
}

// ConfigChanged asks for every managed Secret to be synced with set. It
// never blocks: changes that arrive while a sync is pending fold into it.
func (r *Reconciler) ConfigChanged(set *registries.Set) {
	select {
	case r.changes <- event.TypedGenericEvent[*registries.Set]{Object: set}:
	default:
	}
}

// Reconcile syncs one managed Secret, or all of them.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if !r.HasConfig() {
		return reconcile.Result{}, nil
	}
	set := r.Registries()
	if req != allSecrets {
		var s corev1.Secret
		if err := r.Cache.Get(ctx, req.NamespacedName, &s); err != nil {
			return reconcile.Result{}, client.IgnoreNotFound(err)
		}
		return reconcile.Result{}, r.sync(ctx, set, &s)
	}
	var list corev1.SecretList
	if err := r.Cache.List(ctx, &list, client.MatchingLabelsSelector{Selector: pullsecret.ManagedSelector()}); err != nil {
		return reconcile.Result{}, err
	}
	var errs []error
	for i := range list.Items {
		if err := r.sync(ctx, set, &list.Items[i]); err != nil {
			errs = append(errs, err)
		}
	}
	logr.FromContextOrDiscard(ctx).V(1).Info("Synced managed pull secrets", "count", len(list.Items), "errors", len(errs))
	return reconcile.Result{RequeueAfter: r.Resync}, errors.Join(errs...)
}

// sync brings one managed Secret in line with its registry, or deletes it.
func (r *Reconciler) sync(ctx context.Context, set *registries.Set, s *corev1.Secret) error {
	if !pullsecret.IsManaged(s) {
		return nil
	}
	name := s.Labels[pullsecret.LabelRegistry]
	log := logr.FromContextOrDiscard(ctx).WithValues("secret", klog.KObj(s), "registry", name)
	reg := set.Get(name)
	wanted := reg != nil && reg.Manages() && reg.SecretName == s.Name
	if wanted {
		ns := plan.Namespace{Name: s.Namespace}
		var err error
		ns.Labels, err = r.Namespaces.NamespaceLabels(ctx, s.Namespace)
		if apierrors.IsNotFound(err) {
			return nil // the namespace is going away, and the Secret with it
		}
		if err != nil {
			return err
		}
		wanted, _ = plan.ForNamespace(reg, ns, r.Exclusions)
	}
	if !wanted {
		if err := r.Ensurer.Delete(ctx, s); err != nil {
			return err
		}
		log.Info("Deleted pull secret: its registry no longer serves this namespace")
		r.Metrics.SecretDeleted(name)
		return nil
	}
	want, err := reg.Want(ctx)
	if err != nil {
		return err
	}
	if want.Matches(s) {
		return nil
	}
	out, err := r.Ensurer.Ensure(ctx, s.Namespace, want, false)
	if err != nil {
		return err
	}
	if out != pullsecret.Unchanged {
		log.Info("Pull secret brought up to date", "outcome", out)
	}
	r.Metrics.SecretEnsured(name, out)
	return nil
}

// SetupWithManager watches the managed Secrets and config changes.
func (r *Reconciler) SetupWithManager(mgr manager.Manager) error {
	if r.Resync == 0 {
		r.Resync = 10 * time.Minute
	}
	r.changes = make(chan event.TypedGenericEvent[*registries.Set], 1)
	toAll := handler.TypedEnqueueRequestsFromMapFunc(func(context.Context, *registries.Set) []reconcile.Request {
		return []reconcile.Request{allSecrets}
	})
	return builder.ControllerManagedBy(mgr).
		Named("pullsecrets").
		For(&corev1.Secret{}, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			s, ok := o.(*corev1.Secret)
			return ok && pullsecret.IsManaged(s)
		}))).
		WatchesRawSource(source.TypedChannel(r.changes, toAll)).
		// A namespace's labels decide which scoped registries serve it.
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.secretsIn),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Complete(r)
}

// secretsIn maps a namespace to the managed Secrets it holds.
func (r *Reconciler) secretsIn(ctx context.Context, ns client.Object) []reconcile.Request {
	var list corev1.SecretList
	if err := r.Cache.List(ctx, &list, client.InNamespace(ns.GetName()), client.MatchingLabelsSelector{Selector: pullsecret.ManagedSelector()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, len(list.Items))
	for i := range list.Items {
		reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
	}
	return reqs
}
