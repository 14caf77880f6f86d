package pullsecret

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Outcome is what Ensure did.
type Outcome string

// The outcomes of Ensure.
const (
	Unchanged   Outcome = "unchanged"
	Created     Outcome = "created"
	Updated     Outcome = "updated"
	WouldCreate Outcome = "would-create" // dry run
	WouldUpdate Outcome = "would-update" // dry run
)

// ErrNotManaged is returned when a Secret of the wanted name exists in the
// namespace but is not regcred's: regcred never takes over a Secret it did
// not make.
var ErrNotManaged = errors.New("exists and is not managed by regcred")

// Ensurer keeps managed pull secrets in place. Reads go to Cache (an
// informer over the managed Secrets only), so that in steady state Ensure
// makes no API call; writes go to API.
type Ensurer struct {
	Cache client.Reader
	API   client.Client
}

// Ensure makes sure the Secret w describes exists in namespace with w's
// content. With dryRun it writes nothing and says what it would do.
// Two callers racing to create the same Secret both succeed.
func (e *Ensurer) Ensure(ctx context.Context, namespace string, w *Want, dryRun bool) (Outcome, error) {
	var cached corev1.Secret
	err := e.Cache.Get(ctx, client.ObjectKey{Namespace: namespace, Name: w.Name}, &cached)
	switch {
	case err == nil && w.Matches(&cached):
		return Unchanged, nil
	case err == nil && !IsManaged(&cached):
		return "", fmt.Errorf("secret %s/%s: %w", namespace, w.Name, ErrNotManaged)
	case err == nil:
		if dryRun {
			return WouldUpdate, nil
		}
		return e.update(ctx, &cached, w)
	case !apierrors.IsNotFound(err):
		return "", fmt.Errorf("secret %s/%s: reading cache: %w", namespace, w.Name, err)
	case dryRun:
		return WouldCreate, nil
	}
	err = e.API.Create(ctx, w.Secret(namespace))
	if err == nil {
		return Created, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("secret %s/%s: creating: %w", namespace, w.Name, err)
	}
	// Another replica, or a Secret the cache does not hold (not ours, or not
	// seen yet): look at the live object.
	live, err := e.readLive(ctx, namespace, w.Name)
	if err != nil {
		return "", err
	}
	switch {
	case !IsManaged(live):
		return "", fmt.Errorf("secret %s/%s: %w", namespace, w.Name, ErrNotManaged)
	case w.Matches(live):
		return Unchanged, nil
	}
	return e.update(ctx, live, w)
}

// readLive reads one Secret from the API server. It lists by name instead
// of getting, so that regcred needs no `get` on Secrets outside its own
// namespace: RBAC cannot limit list and watch by label, but it can at least
// deny reading a Secret by name.
func (e *Ensurer) readLive(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	var list corev1.SecretList
	err := e.API.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{"metadata.name": name})
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: reading: %w", namespace, name, err)
	}
	if len(list.Items) == 0 {
		return nil, fmt.Errorf("secret %s/%s: reading: %w", namespace, name, apierrors.NewNotFound(corev1.Resource("secrets"), name))
	}
	return &list.Items[0], nil
}

// update writes w onto current, retrying once on a conflict with the live
// object.
func (e *Ensurer) update(ctx context.Context, current *corev1.Secret, w *Want) (Outcome, error) {
	s := current.DeepCopy()
	w.apply(s)
	err := e.API.Update(ctx, s)
	if apierrors.IsConflict(err) {
		live, err := e.readLive(ctx, s.Namespace, s.Name)
		if err != nil {
			return "", err
		}
		if !IsManaged(live) {
			return "", fmt.Errorf("secret %s/%s: %w", s.Namespace, s.Name, ErrNotManaged)
		}
		if w.Matches(live) {
			return Unchanged, nil
		}
		w.apply(live)
		if err := e.API.Update(ctx, live); err != nil {
			return "", fmt.Errorf("secret %s/%s: updating: %w", s.Namespace, s.Name, err)
		}
		return Updated, nil
	}
	if err != nil {
		return "", fmt.Errorf("secret %s/%s: updating: %w", s.Namespace, s.Name, err)
	}
	return Updated, nil
}

// Delete removes a managed Secret. A Secret that is gone already, or that
// is not regcred's, is left as it is.
func (e *Ensurer) Delete(ctx context.Context, s *corev1.Secret) error {
	if !IsManaged(s) {
		return nil
	}
	err := e.API.Delete(ctx, s, client.Preconditions{UID: &s.UID})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("secret %s/%s: deleting: %w", s.Namespace, s.Name, err)
	}
	return nil
}
