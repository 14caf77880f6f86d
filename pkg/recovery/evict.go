package recovery

import (
	"context"
	"errors"
	"net/http"
	"strings"

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

// Evict creates the Pod's eviction, as the clientset's Evict does, but
// tries once: the API server asks to retry a refusal after 10 s when a
// budget is not processed yet, and client-go would retry ten times,
// holding a worker for 100 s. The controller's own backoff retries.
func (e APIEvictor) Evict(ctx context.Context, namespace, name string, uid types.UID) error {
	return e.Client.PolicyV1().RESTClient().Post().
		AbsPath("/api/v1").
		Namespace(namespace).
		Resource("pods").
		Name(name).
		SubResource("eviction").
		MaxRetries(0).
		Body(&policyv1.Eviction{
			ObjectMeta:    metav1.ObjectMeta{Name: name, Namespace: namespace},
			DeleteOptions: &metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(uid))},
		}).
		Do(ctx).
		Error()
}

// blockedByBudget tells whether a PodDisruptionBudget refused the eviction
// (429, or 403 for a budget that allows fewer than no disruptions), and
// the API server's explanation, which names the budget. It counts too a
// Pod that more than one budget selects, which the Eviction API refuses
// (500) until the admin fixes the budgets.
func blockedByBudget(err error) (string, bool) {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return "", false
	}
	st := status.Status()
	if st.Code == http.StatusInternalServerError && strings.Contains(st.Message, "more than one PodDisruptionBudget") {
		return st.Message, true
	}
	if !apierrors.IsTooManyRequests(err) && !apierrors.IsForbidden(err) || st.Details == nil {
		return "", false
	}
	for _, c := range st.Details.Causes {
		if c.Type == policyv1.DisruptionBudgetCause {
			return c.Message, true
		}
	}
	// Older API servers refuse without the cause, naming the budget.
	if apierrors.IsForbidden(err) && st.Details.Kind == "poddisruptionbudget" {
		return st.Message, true
	}
	return "", false
}
