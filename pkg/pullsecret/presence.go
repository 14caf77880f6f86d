package pullsecret

import (
	"context"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

var secretsResource = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}

// Presence knows which namespaces hold the admin's own pull secrets (those
// named in image-pull-secret mode) without caching any other Secret, nor
// any Secret's data: one metadata-only informer per name, selected by
// metadata.name, and of each only its key. Admissions read it; they never
// call the API.
type Presence struct {
	client metadata.Interface

	mu        sync.Mutex
	ctx       context.Context
	informers map[string]*nameInformer
	want      []string
}

type nameInformer struct {
	informer cache.SharedIndexInformer
	stop     context.CancelFunc
}

// NewPresence returns a Presence that reads Secret metadata through c.
func NewPresence(c metadata.Interface) *Presence {
	return &Presence{client: c, informers: map[string]*nameInformer{}}
}

// Track makes Presence follow exactly these Secret names.
func (p *Presence) Track(names []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.want = names
	p.trackLocked()
}

// trackLocked runs the informers of the names wanted, and only those, once
// started; p.mu is held.
func (p *Presence) trackLocked() {
	if p.ctx == nil {
		return // started later by Start
	}
	keep := map[string]bool{}
	for _, n := range p.want {
		keep[n] = true
		if _, ok := p.informers[n]; !ok {
			p.informers[n] = p.start(n)
		}
	}
	for n, inf := range p.informers {
		if !keep[n] {
			inf.stop()
			delete(p.informers, n)
		}
	}
}

func (p *Presence) start(name string) *nameInformer {
	ctx, stop := context.WithCancel(p.ctx)
	inf := metadatainformer.NewFilteredMetadataInformer(p.client, secretsResource, metav1.NamespaceAll, 10*time.Minute,
		cache.Indexers{}, func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}).Informer()
	// Only the key stays in memory: annotations such as kubectl's
	// last-applied-configuration hold the Secret's data, credentials
	// included. SetTransform fails only once the informer runs.
	_ = inf.SetTransform(keyOnly)
	go inf.RunWithContext(ctx)
	return &nameInformer{informer: inf, stop: stop}
}

// Exists reports whether Secret name exists in namespace; known is false
// while the name is not tracked or its informer has not synced.
func (p *Presence) Exists(namespace, name string) (exists, known bool) {
	p.mu.Lock()
	inf, ok := p.informers[name]
	p.mu.Unlock()
	if !ok || !inf.informer.HasSynced() {
		return false, false
	}
	_, exists, err := inf.informer.GetStore().GetByKey(namespace + "/" + name)
	return exists, err == nil
}

// NeedLeaderElection is false: every replica answers admissions.
func (p *Presence) NeedLeaderElection() bool { return false }

// Start runs the informers until ctx ends.
func (p *Presence) Start(ctx context.Context) error {
	// The names wanted when the informers start, under the lock: a Track
	// meanwhile is never undone by an older list.
	p.mu.Lock()
	p.ctx = ctx
	p.trackLocked()
	p.mu.Unlock()
	<-ctx.Done()
	return nil
}

// keyOnly keeps of a Secret's metadata what the informer needs: its
// namespace, name, UID and resourceVersion.
func keyOnly(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil // a tombstone, or what the informer passes as is
	}
	return &metav1.PartialObjectMetadata{TypeMeta: m.TypeMeta, ObjectMeta: metav1.ObjectMeta{
		Namespace: m.Namespace, Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion}}, nil
}
