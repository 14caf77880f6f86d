// Package nscache keeps what regcred reads of every namespace, its name and
// labels, in under 0.2 KiB a namespace (10,000 take 1.6 MiB, make
// bench-scale).
//
// An informer's cache would hold each namespace as an object (metadata, its
// labels map, the key, the namespace index): about 700 bytes a namespace,
// 7 MiB in a cluster of 10,000. Here a namespace is its name and a pointer
// to its label set, which namespaces with the same labels share;
// kubernetes.io/metadata.name, the one label every namespace has and no
// two share, is kept as a flag, not in the set.
package nscache

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/metadata"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// labelSet is a set of labels as namespaces share it: decoded once, never
// modified, counted so that the last namespace to leave it frees it.
type labelSet struct {
	key    string
	labels map[string]string
	refs   int
}

// entry is one namespace: its label set, and whether its
// kubernetes.io/metadata.name label (its name) is set.
type entry struct {
	set       *labelSet
	nameLabel bool
}

// Cache holds every namespace's name and labels, as a reflector lists and
// watches them. It is safe for concurrent use.
type Cache struct {
	lw toolscache.ListerWatcher

	mu         sync.RWMutex
	namespaces map[string]entry
	sets       map[string]*labelSet
	handlers   []func(name string)
	syncOnce   sync.Once
	synced     chan struct{} // closed by the first list
}

// New returns a cache of the namespaces lw lists and watches (see
// ListWatch). Start runs it.
func New(lw toolscache.ListerWatcher) *Cache {
	return &Cache{
		lw:         lw,
		namespaces: map[string]entry{},
		sets:       map[string]*labelSet{},
		synced:     make(chan struct{}),
	}
}

// ListWatch lists and watches namespaces' metadata only, through client.
// Of each namespace it passes on its name, labels and resource version
// only: the reflector holds every namespace of its first list at once
// before the cache takes them, and managedFields and annotations would be
// most of that.
func ListWatch(client metadata.Interface) toolscache.ListerWatcher {
	ns := client.Resource(corev1.SchemeGroupVersion.WithResource("namespaces"))
	return &toolscache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			list, err := ns.List(ctx, o)
			if err != nil {
				return nil, err
			}
			for i := range list.Items {
				slim(&list.Items[i])
			}
			return list, nil
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			w, err := ns.Watch(ctx, o)
			if err != nil {
				return nil, err
			}
			return slimWatch(w), nil
		},
	}
}

// slimWatch passes on w's events with their namespaces slimmed, but
// bookmarks: their annotations say where a streamed list ends.
func slimWatch(w watch.Interface) watch.Interface {
	return watch.Filter(w, func(e watch.Event) (watch.Event, bool) {
		if m, ok := e.Object.(*metav1.PartialObjectMetadata); ok && e.Type != watch.Bookmark {
			slim(m)
		}
		return e, true
	})
}

// slim keeps of a namespace's metadata what the cache reads.
func slim(m *metav1.PartialObjectMetadata) {
	m.ObjectMeta = metav1.ObjectMeta{Name: m.Name, Labels: m.Labels, ResourceVersion: m.ResourceVersion}
}

// OnChange registers f, told the name of a namespace whose labels changed
// or that was deleted (not of namespaces created: nothing of regcred's is
// in them yet). f runs on the cache's goroutine and must not block. Register
// before Start.
func (c *Cache) OnChange(f func(name string)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handlers = append(c.handlers, f)
}

// Start lists, then watches, until ctx ends (a manager.Runnable of every
// replica).
func (c *Cache) Start(ctx context.Context) error {
	logger := klog.FromContext(ctx).WithName("namespaces")
	r := toolscache.NewReflectorWithOptions(c.lw, &metav1.PartialObjectMetadata{}, store{c}, toolscache.ReflectorOptions{
		Name:   "namespaces",
		Logger: &logger,
	})
	r.RunWithContext(ctx)
	return nil
}

// NeedLeaderElection is false: every replica admits, and admission reads
// namespace labels.
func (c *Cache) NeedLeaderElection() bool { return false }

// WaitForSync waits for the first list, or for ctx to end.
func (c *Cache) WaitForSync(ctx context.Context) bool {
	select {
	case <-c.synced:
		return true
	case <-ctx.Done():
		return false
	}
}

// Labels returns a namespace's labels, a map of the caller's own, and
// whether the cache holds the namespace.
func (c *Cache) Labels(name string) (map[string]string, bool) {
	c.mu.RLock()
	e, ok := c.namespaces[name]
	c.mu.RUnlock()
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(e.set.labels)+1)
	maps.Copy(out, e.set.labels)
	if e.nameLabel {
		out[corev1.LabelMetadataName] = name
	}
	return out, true
}

// set records a namespace's labels; it reports whether they changed (false
// for a namespace it did not hold). The caller holds mu.
func (c *Cache) set(name string, labels map[string]string) (changed bool) {
	nameLabel := labels[corev1.LabelMetadataName] == name
	key := setKey(labels, nameLabel)
	old, had := c.namespaces[name]
	if had && old.set.key == key && old.nameLabel == nameLabel {
		return false
	}
	s := c.sets[key]
	if s == nil {
		shared := make(map[string]string, len(labels))
		for k, v := range labels {
			if !nameLabel || k != corev1.LabelMetadataName {
				shared[k] = v
			}
		}
		s = &labelSet{key: key, labels: shared}
		c.sets[key] = s
	}
	s.refs++
	if had {
		c.release(old.set)
	}
	c.namespaces[name] = entry{set: s, nameLabel: nameLabel}
	return had
}

// remove forgets a namespace; it reports whether the cache held it. The
// caller holds mu.
func (c *Cache) remove(name string) bool {
	old, had := c.namespaces[name]
	if !had {
		return false
	}
	delete(c.namespaces, name)
	c.release(old.set)
	return true
}

func (c *Cache) release(s *labelSet) {
	if s.refs--; s.refs == 0 {
		delete(c.sets, s.key)
	}
}

// setKey is a label set's identity: its labels but the name label, sorted,
// NUL-separated (neither keys nor values hold a NUL).
func setKey(labels map[string]string, nameLabel bool) string {
	keys := slices.Sorted(maps.Keys(labels))
	var b strings.Builder
	for _, k := range keys {
		if nameLabel && k == corev1.LabelMetadataName {
			continue
		}
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(labels[k])
		b.WriteByte(0)
	}
	return b.String()
}

func (c *Cache) notify(names []string) {
	if len(names) == 0 {
		return
	}
	c.mu.RLock()
	handlers := c.handlers
	c.mu.RUnlock()
	for _, n := range names {
		for _, f := range handlers {
			f(n)
		}
	}
}

// store is the cache as the reflector feeds it.
type store struct{ c *Cache }

func meta(obj any) (metav1.Object, error) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("namespace cache: unexpected object %T", obj)
	}
	return m, nil
}

func (s store) Add(obj any) error { return s.Update(obj) }

func (s store) Update(obj any) error {
	m, err := meta(obj)
	if err != nil {
		return err
	}
	s.c.mu.Lock()
	changed := s.c.set(m.GetName(), m.GetLabels())
	s.c.mu.Unlock()
	if changed {
		s.c.notify([]string{m.GetName()})
	}
	return nil
}

func (s store) Delete(obj any) error {
	m, err := meta(obj)
	if err != nil {
		return err
	}
	s.c.mu.Lock()
	had := s.c.remove(m.GetName())
	s.c.mu.Unlock()
	if had {
		s.c.notify([]string{m.GetName()})
	}
	return nil
}

// Replace takes a whole list (the first, or one after a watch could not
// resume): namespaces gone or relabelled meanwhile are told as changed.
func (s store) Replace(list []any, _ string) error {
	seen := make(map[string]struct{}, len(list))
	var changed []string
	s.c.mu.Lock()
	for _, obj := range list {
		m, err := meta(obj)
		if err != nil {
			s.c.mu.Unlock()
			return err
		}
		seen[m.GetName()] = struct{}{}
		if s.c.set(m.GetName(), m.GetLabels()) {
			changed = append(changed, m.GetName())
		}
	}
	for name := range s.c.namespaces {
		if _, ok := seen[name]; !ok {
			s.c.remove(name)
			changed = append(changed, name)
		}
	}
	s.c.mu.Unlock()
	s.c.syncOnce.Do(func() { close(s.c.synced) })
	s.c.notify(changed)
	return nil
}

func (s store) Resync() error { return nil }
