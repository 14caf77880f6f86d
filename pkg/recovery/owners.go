package recovery

import (
	"maps"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/regcred/regcred/pkg/plan"
)

// The plan says which pull secrets a Pod would get if it were admitted
// now, not whether the webhook will give them to its replacement: it does
// not when a Secret of the pull secret's name exists in the namespace and
// is not regcred's (admission leaves it out rather than take it over),
// when the webhook's matchConditions skip the Pod, or when the API server
// cannot reach the webhook (failurePolicy Ignore admits the Pod
// unchanged). Remembering Pods alone, recovery would then evict each
// replacement in turn, for ever. So a term also remembers, per controller
// (by UID), the pull secrets it evicted the controller's Pods for lacking,
// and marks the Pods the controller makes meanwhile without one of them: a
// marked Pod that lacks such a secret is not evicted, whatever the cause;
// regcred gives up on it with an Event.

// owner is what a term remembers of a controller whose Pods it evicted
// for lack of a pull secret.
type owner struct {
	// evicted are the pull secrets that the controller's Pods were
	// evicted for; trying counts, per pull secret, the evictions under
	// way for its lack.
	evicted map[string]bool
	trying  map[string]int
	// evicting are the controller's Pods evicted (or being evicted) that
	// are not gone yet: a StatefulSet or DaemonSet makes the replacement
	// only once its Pod is gone, after the Pod's grace period.
	evicting map[types.UID]bool
	// until is when the owner is forgotten, once evicting and trying are
	// empty: the window after its last eviction or after the last of its
	// evicted Pods went.
	until time.Time
}

// made marks a Pod that its controller made, without some of the pull
// secrets it had its Pods evicted for, while the term remembered it.
type made struct {
	// owner is the controller while the term remembers it; empty after.
	owner types.UID
	// secrets are those pull secrets: while the owner is remembered, those
	// it was evicting its Pods for too; after, only those it did evict
	// them for.
	secrets []string
}

// live returns the owner with uid if it is still remembered; it forgets
// one whose window is over. Called with t.mu held.
func (t *term) live(uid types.UID, now time.Time) *owner {
	o := t.owners[uid]
	if o != nil && len(o.evicting) == 0 && len(o.trying) == 0 && !now.Before(o.until) {
		t.forget(uid, o)
		return nil
	}
	return o
}

// forget drops the owner o. The marks of its Pods keep the pull secrets
// it evicted them for, as long as the Pods live: a Pod whose pull fails
// only after the window is still the replacement of an eviction. Called
// with t.mu held.
func (t *term) forget(uid types.UID, o *owner) {
	delete(t.owners, uid)
	for pod, m := range t.made {
		if m.owner != uid {
			continue
		}
		var kept []string
		for _, s := range m.secrets {
			if o.evicted[s] {
				kept = append(kept, s)
			}
		}
		if len(kept) == 0 {
			delete(t.made, pod)
			continue
		}
		t.made[pod] = made{secrets: kept}
	}
}

// added marks p if its controller is remembered and p lacks a pull secret
// the controller's Pods were evicted for: the controller made it since,
// and the webhook did not give it that secret.
func (t *term) added(p *Pod) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	t.sweep(now)
	if len(t.owners) == 0 {
		return
	}
	ref := p.Recreator()
	if ref == nil {
		return
	}
	o := t.live(ref.UID, now)
	if o == nil {
		return
	}
	var lacks []string
	for _, s := range slices.Concat(slices.Collect(maps.Keys(o.evicted)), slices.Collect(maps.Keys(o.trying))) {
		if !slices.Contains(p.PullSecrets, s) && !slices.Contains(lacks, s) {
			lacks = append(lacks, s)
		}
	}
	if len(lacks) > 0 {
		slices.Sort(lacks)
		t.made[p.UID] = made{owner: ref.UID, secrets: lacks}
	}
}

// removed forgets what was done to p, which is gone. If regcred evicted
// it, its controller's window starts again: the controller makes the
// replacement now, if it did not already.
func (t *term) removed(p *Pod) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	delete(t.acted, p.UID)
	delete(t.made, p.UID)
	if ref := p.Recreator(); ref != nil {
		if o := t.owners[ref.UID]; o != nil && o.evicting[p.UID] {
			delete(o.evicting, p.UID)
			o.until = now.Add(t.window)
		}
	}
	t.sweep(now)
}

// evicting remembers that the Pod pod of the controller ref is being
// evicted for lack of secrets. It is called before the eviction: the
// controller may make the replacement, and the cache hold it, before the
// API server's answer comes back.
func (t *term) evicting(ref *metav1.OwnerReference, pod types.UID, secrets []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	t.sweep(now)
	o := t.live(ref.UID, now)
	if o == nil {
		o = &owner{evicted: map[string]bool{}, trying: map[string]int{}, evicting: map[types.UID]bool{}}
		t.owners[ref.UID] = o
	}
	for _, s := range secrets {
		o.trying[s]++
	}
	o.evicting[pod] = true
	o.until = now.Add(t.window)
}

// evicted ends evicting: ok says whether the API server evicted the Pod.
// An eviction that failed or was refused, or whose Pod was gone already,
// replaced nothing.
func (t *term) evicted(ref *metav1.OwnerReference, pod types.UID, secrets []string, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.owners[ref.UID]
	if o == nil {
		return
	}
	for _, s := range secrets {
		if o.trying[s]--; o.trying[s] <= 0 {
			delete(o.trying, s)
		}
		if ok {
			o.evicted[s] = true
		}
	}
	if ok {
		return
	}
	delete(o.evicting, pod)
	if len(o.evicted) == 0 && len(o.trying) == 0 && len(o.evicting) == 0 {
		t.forget(ref.UID, o)
	}
}

// madeSince returns the pull secrets among lacks that p's controller had
// its Pods evicted for before it made p (or was evicting them for then,
// and has since): p's replacement would lack them too.
func (t *term) madeSince(p *Pod, lacks []plan.Lack) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.made[p.UID]
	if !ok {
		return nil
	}
	var o *owner
	if m.owner != "" {
		// Forgetting the owner settles the mark, or drops it.
		if o = t.live(m.owner, t.clock.Now()); o == nil {
			if m, ok = t.made[p.UID]; !ok {
				return nil
			}
		}
	}
	var out []string
	for _, s := range secretsOf(lacks) {
		if slices.Contains(m.secrets, s) && (o == nil || o.evicted[s]) {
			out = append(out, s)
		}
	}
	return out
}

// sweep forgets, at most ten times a window, the owners whose window is
// over, so that the owners of controllers since deleted do not stay.
// Called with t.mu held, on the Pod events the cache gets and at each
// eviction.
func (t *term) sweep(now time.Time) {
	if now.Before(t.nextSweep) {
		return
	}
	t.nextSweep = now.Add(t.window / 10)
	for uid := range t.owners {
		t.live(uid, now)
	}
}

// secretsOf returns the pull secrets of lacks, each once.
func secretsOf(lacks []plan.Lack) []string {
	var out []string
	for _, l := range lacks {
		if !slices.Contains(out, l.Secret) {
			out = append(out, l.Secret)
		}
	}
	return out
}
