package upkeep

import (
	"context"
	"errors"
	"maps"
	"sort"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/secretstore"
)

// memStore is a Store and an Index in memory: what secretstore does, for
// the upkeep's decisions (the real one is tested on the API server).
type memStore struct {
	mu sync.Mutex
	// entries by "namespace/registry"; data of the Secrets written.
	entries map[string]secretstore.Entry
	data    map[string]string
	// failures fail the next writes of a "namespace/registry".
	failures map[string]int
	err      error
	writes   map[string]int
	restores map[string]int
	deletes  map[string]int
	// leftInPlace are the Secrets the API server's policy protects: their
	// delete is refused, and their entry forgotten.
	leftInPlace map[string]bool
	// applying, if set, runs before each Apply, whose error it gives.
	applying func(context.Context) error
}

func newMemStore() *memStore {
	return &memStore{entries: map[string]secretstore.Entry{}, data: map[string]string{}, failures: map[string]int{},
		writes: map[string]int{}, restores: map[string]int{}, deletes: map[string]int{}}
}

// memKey names an entry "namespace/registry", with ".exact" for a
// registry's exact variant.
func memKey(ns, registry string, exact bool) string {
	if exact {
		return ns + "/" + registry + pullsecret.ExactSuffix
	}
	return ns + "/" + registry
}

func (m *memStore) put(ns string, w *pullsecret.Want) {
	k := memKey(ns, w.Registry, w.Exact())
	m.entries[k] = secretstore.Entry{Namespace: ns, Registry: w.Registry, Exact: w.Exact(), UID: types.UID("uid-" + k), Version: w.Version(), Shape: w.Shape(), ExpiresAt: w.ExpiresAt, Hosts: w.Hosts}
	m.data[k] = string(w.Data)
}

func (m *memStore) fail(k string) error {
	if m.failures[k] > 0 {
		m.failures[k]--
		return m.err
	}
	return nil
}

func (m *memStore) Apply(ctx context.Context, ns string, w *pullsecret.Want, dryRun bool) (secretstore.Outcome, error) {
	if m.applying != nil {
		if err := m.applying(ctx); err != nil {
			return "", err
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey(ns, w.Registry, w.Exact())
	if e, ok := m.entries[k]; ok && e.Satisfies(w) {
		return secretstore.Unchanged, nil
	}
	if dryRun {
		return secretstore.WouldCreate, nil
	}
	m.writes[k]++
	if err := m.fail(k); err != nil {
		return "", err
	}
	w, err := m.widen(ctx, k, w)
	if err != nil {
		return "", err
	}
	m.put(ns, w)
	return secretstore.Created, nil
}

// widen is w serving the hosts the entry of k records too, as the real
// store writes a secret whose content depends on its hosts.
func (m *memStore) widen(ctx context.Context, k string, w *pullsecret.Want) (*pullsecret.Want, error) {
	if e, ok := m.entries[k]; ok && w.Widen != nil && !pullsecret.ServesHosts(w.Hosts, e.Hosts) {
		return w.Widen(ctx, e.Hosts)
	}
	return w, nil
}

func (m *memStore) Restore(ctx context.Context, ns string, w *pullsecret.Want) (secretstore.Outcome, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey(ns, w.Registry, w.Exact())
	m.restores[k]++
	if err := m.fail(k); err != nil {
		return "", err
	}
	w, err := m.widen(ctx, k, w)
	if err != nil {
		return "", err
	}
	m.put(ns, w)
	return secretstore.Updated, nil
}

func (m *memStore) Delete(_ context.Context, e secretstore.Entry, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey(e.Namespace, e.Registry, e.Exact)
	m.deletes[k]++
	delete(m.entries, k)
	if m.leftInPlace[k] {
		return secretstore.ErrLeftInPlace
	}
	delete(m.data, k)
	return nil
}

func (m *memStore) Pending(ctx context.Context, e secretstore.Entry) error {
	if err := ctx.Err(); err != nil {
		return err // as the API server's call would
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey(e.Namespace, e.Registry, e.Exact)
	prev, known := m.entries[k]
	if known && pullsecret.ServesHosts(prev.Hosts, e.Hosts) {
		return nil
	}
	m.entries[k] = secretstore.Entry{Namespace: e.Namespace, Registry: e.Registry, Exact: e.Exact, UID: prev.UID, Version: "pending", Hosts: pullsecret.UnionHosts(prev.Hosts, e.Hosts)}
	return nil
}

func (m *memStore) Stale(ctx context.Context, e secretstore.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey(e.Namespace, e.Registry, e.Exact)
	prev := m.entries[k]
	m.entries[k] = secretstore.Entry{Namespace: e.Namespace, Registry: e.Registry, Exact: e.Exact, UID: prev.UID, Version: "pending", Hosts: pullsecret.UnionHosts(prev.Hosts, e.Hosts)}
	return nil
}

func (m *memStore) Forget(_ context.Context, e secretstore.Entry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.entries, memKey(e.Namespace, e.Registry, e.Exact))
	return nil
}

func (m *memStore) All(context.Context) ([]secretstore.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]secretstore.Entry, 0, len(m.entries))
	for _, e := range m.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Namespace+out[i].Registry < out[j].Namespace+out[j].Registry })
	return out, nil
}

func (m *memStore) InShard(ctx context.Context, shard string) ([]secretstore.Entry, error) {
	all, _ := m.All(ctx)
	var out []secretstore.Entry
	for _, e := range all {
		if secretstore.ShardOf(e.Namespace) == shard {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memStore) InNamespace(ctx context.Context, ns string) ([]secretstore.Entry, error) {
	all, _ := m.All(ctx)
	var out []secretstore.Entry
	for _, e := range all {
		if e.Namespace == ns {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memStore) Lookup(_ context.Context, ns, registry string, exact bool) (secretstore.Entry, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.entries[memKey(ns, registry, exact)]
	return e, ok
}

func (m *memStore) get(k string) (data string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok = m.data[k]
	return data, ok
}

func (m *memStore) count(counter map[string]int, k string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return counter[k]
}

// nsLabels are namespaces by name; a missing one does not exist.
type nsLabels map[string]map[string]string

func (n nsLabels) NamespaceLabels(_ context.Context, name string) (map[string]string, error) {
	l, ok := n[name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, name)
	}
	return l, nil
}

type counts struct {
	mu                         sync.Mutex
	ensured, deleted, restored map[string]int
}

func newCounts() *counts {
	return &counts{ensured: map[string]int{}, deleted: map[string]int{}, restored: map[string]int{}}
}

func (c *counts) SecretEnsured(r string, o secretstore.Outcome) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o != secretstore.Unchanged {
		c.ensured[r]++
	}
}
func (c *counts) deletedCounts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.deleted)
}

func (c *counts) SecretDeleted(r string)  { c.mu.Lock(); c.deleted[r]++; c.mu.Unlock() }
func (c *counts) SecretRestored(r string) { c.mu.Lock(); c.restored[r]++; c.mu.Unlock() }

var errUnavailable = errors.New("API: ServiceUnavailable")

var errBeingTerminated = errors.New("unable to create new content in namespace a because it is being terminated")
