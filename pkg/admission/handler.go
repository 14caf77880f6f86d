package admission

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/plan"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/secretstore"
)

// Store makes sure a pull secret is in place in a namespace (package
// secretstore); in steady state it makes no API call.
type Store interface {
	Apply(ctx context.Context, namespace string, w *pullsecret.Want, dryRun bool) (secretstore.Outcome, error)
	// Hosts are the image hosts a registry's pull secret serves already
	// (for a registry with a credential per host, a glob ECR registry).
	Hosts(ctx context.Context, namespace, registry string, exact bool) []string
}

// Presence tells whether a Secret that regcred does not manage exists;
// known is false when it cannot tell (yet).
type Presence interface {
	Exists(namespace, name string) (exists, known bool)
}

// Namespaces tells the labels of a namespace, for registries scoped to
// some namespaces.
type Namespaces interface {
	NamespaceLabels(ctx context.Context, name string) (map[string]string, error)
}

// Recorder counts what the handler does. All methods must be cheap.
type Recorder interface {
	Admission(outcome Outcome)
	// Unserved counts an image left without its registry's credentials,
	// or a Pod left alone, by reason.
	Unserved(reason plan.Reason)
	Injected(registry string)
	SecretEnsured(registry string, outcome secretstore.Outcome)
}

// Outcome is how one admission ended.
type Outcome string

// The admission outcomes.
const (
	Patched    Outcome = "patched"
	Unchanged  Outcome = "unchanged"
	FailedOpen Outcome = "failed-open"
	Skipped    Outcome = "skipped"
)

// Handler is the Pod admission handler.
type Handler struct {
	// Registries returns the current registry set; never nil.
	Registries func() *registries.Set
	Secrets    Store
	Presence   Presence
	Namespaces Namespaces
	// Retry asks for a pull secret whose creation failed to be tried again
	// in the background.
	Retry func(namespace, secret string)
	// Exclusions are the namespaces regcred never serves (kube-system, its
	// own, the admin's list).
	Exclusions plan.Exclusions
	// Loaded is closed once the config has been read (good or not);
	// nil means it has been. Until then a review waits up to LoadWait,
	// then the Pod is admitted unchanged with a warning.
	Loaded   <-chan struct{}
	LoadWait time.Duration
	Metrics  Recorder
	// NoticeInterval is how often, at most, the same reason an image got
	// no credentials is logged for the same registry (or image host) and
	// namespace (DefaultNoticeInterval if 0).
	NoticeInterval time.Duration

	noticesOnce sync.Once
	notices     *notices
}

func (h *Handler) notice(ctx context.Context, namespace string, misses []plan.Miss) {
	h.noticesOnce.Do(func() {
		interval := h.NoticeInterval
		if interval <= 0 {
			interval = DefaultNoticeInterval
		}
		h.notices = &notices{interval: interval, now: time.Now}
	})
	for _, m := range misses {
		h.Metrics.Unserved(m.Reason)
	}
	h.notices.log(ctx, namespace, misses)
}

var _ admission.Handler = (*Handler)(nil)

// Handle answers one AdmissionReview. It never denies a Pod.
func (h *Handler) Handle(ctx context.Context, req admission.Request) (resp admission.Response) {
	log := logr.FromContextOrDiscard(ctx)
	outcome := Unchanged
	defer func() {
		if r := recover(); r != nil {
			log.Error(fmt.Errorf("panic: %v", r), "Admission failed; Pod admitted unchanged", "namespace", req.Namespace)
			resp = allowWithWarning("regcred failed internally; Pod admitted without injected pull secrets")
			outcome = FailedOpen
		}
		h.Metrics.Admission(outcome)
	}()

	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create || req.SubResource != "" {
		outcome = Skipped
		return admission.Allowed("not a Pod creation")
	}
	if !h.waitForConfig(ctx) {
		outcome = FailedOpen
		log.Info("Admitted a Pod before the config was read", "namespace", req.Namespace)
		return allowWithWarning("regcred has not read its registry config yet; Pod admitted without injected pull secrets")
	}
	pod, err := decodePod(req.Object.Raw)
	if err != nil {
		outcome = FailedOpen
		log.Error(err, "Cannot decode Pod; admitted unchanged", "namespace", req.Namespace)
		return allowWithWarning("regcred could not read this Pod; no pull secrets injected")
	}
	// controller-runtime's request logger says the namespace already.
	log = log.WithValues("pod", pod.displayName())
	ctx = logr.NewContext(ctx, log)
	ns := h.namespace(ctx, req.Namespace)
	set := h.Registries()
	input := pod.planInput()
	p := plan.ForPod(set, input, ns, h.Exclusions)
	if p.Skipped != "" {
		outcome = Skipped
		h.notice(ctx, req.Namespace, plan.Unserved(p, nil, nil))
		return admission.Allowed(p.SkipDetail)
	}

	dryRun := ptr.Deref(req.DryRun, false)
	add, warnings, failed := h.apply(ctx, req.Namespace, p, dryRun)
	// The self-check: what the kubelet will try first, with the Pod's
	// pull secrets as they will be.
	final := input.PullSecrets
	for _, a := range add {
		final = append(final, a.secret)
	}
	firsts := plan.KubeletFirst(set, input.Images, final)
	warnings = append(warnings, plan.Shadowed(p, firsts, final)...)
	misses := plan.Unserved(p, firsts, final)
	h.notice(ctx, req.Namespace, misses)
	resp = admission.Allowed("")
	resp.Patches = buildPatch(pod, add, notInjected(misses))
	if len(warnings) > 0 {
		resp = resp.WithWarnings(capWarnings(warnings)...)
	}
	switch {
	case failed:
		outcome = FailedOpen
	case len(add) > 0:
		outcome = Patched
	}
	if len(add) > 0 {
		names := make([]string, len(add))
		for i, a := range add {
			names[i] = a.registry
		}
		log.V(1).Info("Injected pull secrets", "registries", names, "dryRun", dryRun)
	}
	return resp
}

// waitForConfig waits, at most LoadWait, for the config to have been read.
func (h *Handler) waitForConfig(ctx context.Context) bool {
	if h.Loaded == nil {
		return true
	}
	select {
	case <-h.Loaded:
		return true
	default:
	}
	t := time.NewTimer(h.LoadWait)
	defer t.Stop()
	select {
	case <-h.Loaded:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// namespace reads what the plan needs of the namespace: its labels, from a
// cache in steady state.
func (h *Handler) namespace(ctx context.Context, name string) plan.Namespace {
	ns := plan.Namespace{Name: name}
	if h.Exclusions[name] {
		return ns // never served: its labels do not matter
	}
	if h.Namespaces == nil {
		ns.LabelsUnknown = true
		return ns
	}
	labels, err := h.Namespaces.NamespaceLabels(ctx, name)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "Cannot read the namespace's labels; registries scoped by namespace are not injected")
		ns.LabelsUnknown = true
	}
	ns.Labels = labels
	return ns
}

// apply carries out the plan: it makes sure each planned pull secret is in
// place, and says what to inject and what to tell the user. failed reports
// that a regcred problem left the Pod without something it should have had.
func (h *Handler) apply(ctx context.Context, namespace string, p plan.Plan, dryRun bool) (add []injection, warnings []string, failed bool) {
	for _, img := range p.Images {
		switch img.Reason {
		case plan.InvalidReference, plan.HostCase:
			warnings = append(warnings, "regcred: "+img.Detail)
		case plan.NamespaceUnknown:
			warnings = append(warnings, "regcred: "+img.Detail)
			failed = true
		}
	}
	for _, in := range p.Add {
		r := in.Registry
		ok, warning := h.prepare(ctx, namespace, in, dryRun)
		if warning != "" {
			warnings = append(warnings, warning)
			failed = failed || !ok || r.Mode == config.RegistryCredentials
		}
		if ok {
			add = append(add, injection{secret: in.Secret, registry: r.Name})
			h.Metrics.Injected(r.Name)
		}
	}
	return add, warnings, failed
}

// prepare makes sure r's pull secret can be injected into the namespace.
// It reports whether to inject it, and a warning for the user if any.
func (h *Handler) prepare(ctx context.Context, namespace string, in plan.Injection, dryRun bool) (bool, string) {
	r := in.Registry
	log := logr.FromContextOrDiscard(ctx).WithValues("registry", r.Name, "secret", in.Secret)
	if r.Mode == config.ImagePullSecret {
		if h.Presence == nil {
			return true, ""
		}
		if exists, known := h.Presence.Exists(namespace, r.SecretName); known && !exists {
			return true, fmt.Sprintf("regcred: image pull secret %q for registry %q does not exist in namespace %q; create it (kubectl create secret docker-registry %s ...) or the image may fail to pull", r.SecretName, r.Name, namespace, r.SecretName)
		}
		return true, ""
	}
	need := registries.Need{Exact: in.Exact}
	if r.PerHost() {
		need.Hosts = union(h.Secrets.Hosts(ctx, namespace, r.Name, in.Exact), in.Hosts)
	}
	want, err := r.Want(ctx, need)
	if err == nil {
		var out secretstore.Outcome
		out, err = h.Secrets.Apply(ctx, namespace, want, dryRun)
		if err == nil {
			h.Metrics.SecretEnsured(r.Name, out)
			return true, ""
		}
	}
	if errors.Is(err, secretstore.ErrNotManaged) {
		log.Info("A Secret with the pull secret's name exists and is not regcred's; not injected")
		return false, fmt.Sprintf("regcred: a Secret named %q exists in namespace %q and is not regcred's (it lacks regcred's labels or is not of type kubernetes.io/dockerconfigjson); regcred never overwrites it, so registry %q's credentials were not injected: rename or delete that Secret", in.Secret, namespace, r.Name)
	}
	// Inject the name anyway: the kubelet reads pull secrets at each pull,
	// so the Pod pulls as soon as the background retry creates it.
	log.Error(err, "Cannot make pull secret; injected its name and will retry")
	if h.Retry != nil && !dryRun {
		h.Retry(namespace, in.Secret)
	}
	return true, fmt.Sprintf("regcred: pull secret %q for registry %q is not ready yet (%s); retrying in the background", in.Secret, r.Name, reason(err))
}

// reason gives a short cause that quotes no credential: the API error's
// reason rather than its message.
func reason(err error) string {
	if r := apierrors.ReasonForError(err); r != metav1.StatusReasonUnknown {
		return "API: " + string(r)
	}
	return "see regcred's log"
}

func allowWithWarning(w string) admission.Response {
	return admission.Allowed("").WithWarnings(w)
}

// union returns the hosts of a and b, sorted, each once.
func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}
