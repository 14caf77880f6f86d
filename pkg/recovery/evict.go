package recovery

import (
	"context"
	"errors"

	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Evictor evicts Pods.
type Evictor interface {
	// Evict evicts the Pod with this UID: a Pod made again under the same
	// name (a StatefulSet's) is not touched.
	Evict(ctx context.Context, namespace, name string, uid types.UID) error
}

// APIEvictor evicts through the Eviction API (policy/v1), so that the API
// server enforces PodDisruptionBudgets.
type APIEvictor struct {
	Client kubernetes.Interface
}

// Evict creates the Pod's eviction.
func (e APIEvictor) Evict(ctx context.Context, namespace, name string, uid types.UID) error {
	return e.Client.PolicyV1().Evictions(namespace).Evict(ctx, &policyv1.Eviction{
		ObjectMeta:    metav1.ObjectMeta{Name: name, Namespace: namespace},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(uid))},
	})
}

// blockedByBudget tells whether a PodDisruptionBudget refused the eviction
// (429, or 403 for a budget that allows fewer than no disruptions), and
// the API server's explanation, which names the budget.
func blockedByBudget(err error) (string, bool) {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || !apierrors.IsTooManyRequests(err) && !apierrors.IsForbidden(err) {
		return "", false
	}
	details := status.Status().Details
	if details == nil {
		return "", false
	}
	for _, c := range details.Causes {
		if c.Type == policyv1.DisruptionBudgetCause {
			return c.Message, true
		}
	}
	return "", false
}
