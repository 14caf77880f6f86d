package admission

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	// in the background, serving the image hosts given (those of a
	// registry whose credential depends on the host; nil for others).
	Retry func(namespace, secret string, hosts []string)
	// Exclusions are the namespaces regcred never serves (kube-system, its
	// own, the admin's list).
	Exclusions plan.Exclusions
	// Loaded is closed once the config has been read (good or not);
	// nil means it has been. Until then a review waits up to LoadWait,
	// then the Pod is admitted unchanged with a warning.
	Loaded   <-chan struct{}
	LoadWait time.Duration
	Metrics  Recorder
	// Log is where the handler logs, with each review's namespace, Pod
	// and request ID.
	Log logr.Logger
	// NoticeInterval is how often, at most, the same reason an image got
	// no credentials is logged for the same registry (or image host) and
	// namespace (DefaultNoticeInterval if 0).
	NoticeInterval time.Duration

	noticesOnce sync.Once
	notices     *notices
}

func (h *Handler) notice(log *requestLog, namespace string, misses []plan.Miss) {
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
	h.notices.log(log, namespace, misses)
}

var _ http.Handler = (*Handler)(nil)

// ServeHTTP answers one AdmissionReview of a Pod. It reads only what the
// plan needs of the review, in one pass, and answers with a patch written
// from what changes. It never denies a Pod: a malformed review is
// answered as controller-runtime answers one (no Pod to admit), and
// anything that goes wrong on the way admits the Pod unchanged, with a
// warning.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	serveReview(w, r, readObjectAsPod, h.Log, h.review)
}

// review answers a decoded review of a Pod.
func (h *Handler) review(ctx context.Context, req *request) (rep reply) {
	log := &requestLog{base: h.Log, req: req}
	outcome := Unchanged
	defer func() {
		if r := recover(); r != nil {
			log.get().Error(fmt.Errorf("panic: %v", r), "Admission failed; Pod admitted unchanged")
			rep = allowed("regcred failed internally; Pod admitted without injected pull secrets")
			outcome = FailedOpen
		}
		h.Metrics.Admission(outcome)
	}()

	if req.group != "" || req.kind != "Pod" || req.operation != "CREATE" || req.subResource != "" {
		outcome = Skipped
		return allowed()
	}
	if !h.waitForConfig(ctx) {
		outcome = FailedOpen
		log.get().Info("Admitted a Pod before the config was read")
		return allowed("regcred has not read its registry config yet; Pod admitted without injected pull secrets")
	}
	if err := req.podError(); err != nil {
		outcome = FailedOpen
		log.get().Error(err, "Cannot decode Pod; admitted unchanged")
		if errors.Is(err, errTooLarge) {
			return allowed(fmt.Sprintf("regcred could not read this Pod: its admission review is larger than the %d MiB regcred reads; no pull secrets injected", maxReviewSize>>20))
		}
		return allowed("regcred could not read this Pod; no pull secrets injected")
	}
	pod := &req.pod
	ns := h.namespace(ctx, log, req.namespace)
	set := h.Registries()
	input := pod.planInput()
	p := plan.ForPod(set, input, ns, h.Exclusions)
	if p.Skipped != "" {
		outcome = Skipped
		h.notice(log, req.namespace, plan.Unserved(p, nil, nil))
		return allowed()
	}

	dryRun := req.isDryRun()
	add, warnings, failed := h.apply(ctx, log, req.namespace, p, dryRun)
	// The self-check: what the kubelet will try first, with the Pod's
	// pull secrets as they will be.
	final := input.PullSecrets
	for _, a := range add {
		final = append(final, a.secret)
	}
	firsts := plan.KubeletFirst(set, input.Images, final)
	warnings = append(warnings, plan.Shadowed(p, firsts, final)...)
	misses := plan.Unserved(p, firsts, final)
	h.notice(log, req.namespace, misses)
	rep = allowed()
	rep.patch = buildPatch(pod, add, notInjected(misses))
	if len(warnings) > 0 {
		rep.warnings = capWarnings(warnings)
	}
	switch {
	case failed:
		outcome = FailedOpen
	case len(add) > 0:
		outcome = Patched
	}
	if len(add) > 0 && h.Log.V(1).Enabled() {
		names := make([]string, len(add))
		for i, a := range add {
			names[i] = a.registry
		}
		log.get().V(1).Info("Injected pull secrets", "registries", names, "dryRun", dryRun)
	}
	return rep
}

// podError says why the review's object is no Pod regcred can read.
func (r *request) podError() error {
	if !r.hasObject {
		return errors.New("the review has no object")
	}
	return r.podErr
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
func (h *Handler) namespace(ctx context.Context, log *requestLog, name string) plan.Namespace {
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
		log.get().Error(err, "Cannot read the namespace's labels; registries scoped by namespace are not injected")
		ns.LabelsUnknown = true
	}
	ns.Labels = labels
	return ns
}

// apply carries out the plan: it makes sure each planned pull secret is in
// place, and says what to inject and what to tell the user. failed reports
// that a regcred problem left the Pod without something it should have had.
func (h *Handler) apply(ctx context.Context, log *requestLog, namespace string, p plan.Plan, dryRun bool) (add []injection, warnings []string, failed bool) {
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
		ok, warning := h.prepare(ctx, log, namespace, in, dryRun)
		if warning != "" {
			warnings = append(warnings, warning)
			failed = failed || !ok || r.Mode == config.RegistryCredentials
		}
		if ok {
			add = append(add, injection{secret: in.Secret, registry: r.Name})
			h.Metrics.Injected(r.Name)
		}
	}
	// The secrets of regcred's the Pod names already: made if missing,
	// not appended; a warning says one could not be made.
	for _, in := range p.Ensure {
		if _, warning := h.prepare(ctx, log, namespace, in, dryRun); warning != "" {
			warnings = append(warnings, warning)
			failed = true
		}
	}
	return add, warnings, failed
}

// prepare makes sure r's pull secret can be injected into the namespace.
// It reports whether to inject it, and a warning for the user if any.
func (h *Handler) prepare(ctx context.Context, rl *requestLog, namespace string, in plan.Injection, dryRun bool) (bool, string) {
	r := in.Registry
	if r.Mode == config.ImagePullSecret {
		if h.Presence == nil {
			return true, ""
		}
		if exists, known := h.Presence.Exists(namespace, r.SecretName); known && !exists {
			return true, fmt.Sprintf("regcred: image pull secret %q for registry %q does not exist in namespace %q; create it (kubectl create secret docker-registry %s ...) or the image may fail to pull", r.SecretName, r.Name, namespace, r.SecretName)
		}
		return true, ""
	}
	// For a registry with a credential per host (a glob ECR registry), the
	// Pod's hosts only: a secret that serves them among others satisfies
	// the want, and the store writes one serving every host its index
	// records besides.
	need := registries.Need{Exact: in.Exact}
	if r.PerHost() {
		need.Hosts = in.Hosts
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
	log := rl.get().WithValues("registry", r.Name, "secret", in.Secret)
	if errors.Is(err, secretstore.ErrNotManaged) {
		log.Info("A Secret with the pull secret's name exists and is not regcred's; not injected")
		return false, fmt.Sprintf("regcred: a Secret named %q exists in namespace %q and is not regcred's (it lacks regcred's labels or is not of type kubernetes.io/dockerconfigjson); regcred never overwrites it, so registry %q's credentials were not injected: rename or delete that Secret (regcred looks again within a minute)", in.Secret, namespace, r.Name)
	}
	// Inject the name anyway: the kubelet reads pull secrets at each pull,
	// so the Pod pulls as soon as the background retry creates it.
	if dryRun {
		log.Error(err, "Cannot tell whether the pull secret could be made (a dry run); injected its name")
		return true, fmt.Sprintf("regcred: pull secret %q for registry %q is not ready yet (%s); a create that is not a dry run would retry it in the background", in.Secret, r.Name, reason(err))
	}
	log.Error(err, "Cannot make pull secret; injected its name and will retry")
	if h.Retry != nil {
		h.Retry(namespace, in.Secret, need.Hosts)
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
