package testbed

import (
	"context"
	"fmt"
	"os"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/app"
	"github.com/regcred/regcred/pkg/certgen"
)

// Regcred is a regcred replica running in this process, registered with
// the API server through a MutatingWebhookConfiguration over TLS.
type Regcred struct {
	App *app.App
	// URL is where the API server calls the webhook.
	URL string
	// CertDir holds the serving certificate (tls.crt, tls.key).
	CertDir string
	done    chan struct{}
}

// Wait blocks until the replica has stopped (its context ended).
func (r *Regcred) Wait() { <-r.done }

// StartRegcred starts a replica with opts (its webhook address and
// certificates are chosen here), waits until it has read its config, and
// registers it. It stops when ctx ends.
func StartRegcred(ctx context.Context, cfg *rest.Config, ca *certgen.CA, opts app.Options, deps app.Deps) (*Regcred, error) {
	dir, err := os.MkdirTemp("", "regcred-certs-")
	if err != nil {
		return nil, err
	}
	pair, err := ca.Issue([]string{"127.0.0.1"}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	if err := pair.Write(dir, "tls.crt", "tls.key"); err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	opts.WebhookHost, opts.WebhookPort, opts.CertDir = "127.0.0.1", port, dir
	a, err := app.New(opts, cfg, deps)
	if err != nil {
		return nil, err
	}
	r := &Regcred{App: a, URL: fmt.Sprintf("https://127.0.0.1:%d%s", port, app.WebhookPath), CertDir: dir, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := a.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "regcred stopped:", err)
		}
		_ = os.RemoveAll(dir)
	}()
	deadline := time.Now().Add(time.Minute)
	for !a.ConfigStatus().Attempted {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("regcred did not read its config within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		return nil, err
	}
	self, err := WhoAmI(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// The latest replica started is the one the API server calls.
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	return r, Register(ctx, c, base, ca.CertPEM, opts.Namespace, self)
}

// Register registers regcred at base as the Helm chart does: the Pod
// webhook, and the one that tells it of changes to its pull secrets by
// anyone but self. It replaces an earlier registration.
func Register(ctx context.Context, c client.Client, base string, caBundle []byte, regcredNamespace, self string) error {
	mutating := WebhookConfiguration(base+app.WebhookPath, caBundle, regcredNamespace)
	err := c.Create(ctx, mutating)
	if apierrors.IsAlreadyExists(err) {
		var have admissionregistrationv1.MutatingWebhookConfiguration
		if err := c.Get(ctx, client.ObjectKeyFromObject(mutating), &have); err != nil {
			return err
		}
		have.Webhooks = mutating.Webhooks
		err = c.Update(ctx, &have)
	}
	if err != nil {
		return err
	}
	validating := SecretEventsConfiguration(base+app.SecretEventsPath, caBundle, regcredNamespace, self)
	err = c.Create(ctx, validating)
	if apierrors.IsAlreadyExists(err) {
		var have admissionregistrationv1.ValidatingWebhookConfiguration
		if err := c.Get(ctx, client.ObjectKeyFromObject(validating), &have); err != nil {
			return err
		}
		have.Webhooks = validating.Webhooks
		err = c.Update(ctx, &have)
	}
	return err
}

// WhoAmI returns the user name cfg authenticates as.
func WhoAmI(ctx context.Context, cfg *rest.Config) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("who am I: %w", err)
	}
	return r.Status.UserInfo.Username, nil
}

// SecretEventsConfiguration registers regcred, as the Helm chart does, to
// be told of every update and delete of a Secret labelled as regcred's, by
// anyone but self: it always allows them, and restores the pull secret.
func SecretEventsConfiguration(url string, caBundle []byte, regcredNamespace, self string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred-pull-secrets"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         "pullsecrets.regcred.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Update, admissionregistrationv1.Delete},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"},
					Scope: ptr.To(admissionregistrationv1.NamespacedScope),
				},
			}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNoneOnDryRun),
			TimeoutSeconds:          ptr.To[int32](2),
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", regcredNamespace}},
			}},
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/managed-by": "regcred"}},
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "not-regcred-itself",
				Expression: fmt.Sprintf("request.userInfo.username != %q", self),
			}},
		}},
	}
}

// WebhookConfiguration registers regcred as the Helm chart does: Pod
// CREATE only, fail open, no side effects on dry run, a short timeout,
// reinvoked if a later webhook adds containers, and never kube-system,
// regcred's own namespace, or a namespace or Pod labelled
// regcred.io/inject=false.
func WebhookConfiguration(url string, caBundle []byte, regcredNamespace string) *admissionregistrationv1.MutatingWebhookConfiguration {
	optOut := metav1.LabelSelectorRequirement{Key: "regcred.io/inject", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"false"}}
	return &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "regcred"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         "pods.regcred.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caBundle},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"},
					Scope: ptr.To(admissionregistrationv1.NamespacedScope),
				},
			}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Ignore),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNoneOnDryRun),
			TimeoutSeconds:          ptr.To[int32](5),
			ReinvocationPolicy:      ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
			AdmissionReviewVersions: []string{"v1"},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", regcredNamespace}},
				optOut,
			}},
			ObjectSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{optOut}},
		}},
	}
}
