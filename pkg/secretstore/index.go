package secretstore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/pullsecret"
)

// The index's ConfigMaps: in regcred's namespace, labelled LabelIndex,
// named ShardPrefix plus one hex digit.
const (
	LabelIndex  = "regcred.io/index"
	IndexValue  = "pull-secrets"
	ShardPrefix = "regcred-index-"
	// Shards is how many ConfigMaps the index is spread over, so that
	// each stays small (~100 KB at 20,000 pull secrets) and a write
	// rewrites one of them only.
	Shards = 16
)

var shardNames = func() (out [Shards]string) {
	for i := range out {
		out[i] = fmt.Sprintf("%s%x", ShardPrefix, i)
	}
	return out
}()

// ShardNames lists the names of every shard.
func ShardNames() []string { return slices.Clone(shardNames[:]) }

// ShardOf returns the shard that holds a namespace's entries.
func ShardOf(namespace string) string { return shardNames[shardNumber(namespace)] }

// shardNumber is the FNV-1a hash of namespace, modulo Shards.
func shardNumber(namespace string) int {
	const offset32, prime32 = 2166136261, 16777619
	h := uint32(offset32)
	for i := 0; i < len(namespace); i++ {
		h ^= uint32(namespace[i])
		h *= prime32
	}
	return int(h % Shards)
}

// shardNumberOf returns the number of the shard named name.
func shardNumberOf(name string) (int, bool) {
	for i, n := range shardNames {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// key is an entry's key in its shard: "<namespace>.<registry>", and
// ".exact" after it for a registry's exact variant. Neither name has a dot
// (both are DNS labels).
func key(namespace, registry string, exact bool) string {
	if exact {
		return namespace + "." + registry + pullsecret.ExactSuffix
	}
	return namespace + "." + registry
}

// Entry says that a namespace holds a registry's pull secret.
type Entry struct {
	Namespace, Registry string
	// Exact is set for the registry's exact variant.
	Exact bool
	// UID is the Secret's, as regcred created it; deletes are bound to it.
	UID types.UID
	// Version identifies the content written (pullsecret.Want.Version).
	Version string
	// ExpiresAt is when the content's token expires; zero if never.
	ExpiresAt time.Time
	// Hosts are the image hosts the content serves, for a registry whose
	// credential depends on the host (a glob ECR registry).
	Hosts []string
	// Shape is the content's shape (pullsecret.Want.Shape); empty in
	// entries recorded before shapes were.
	Shape string
}

// pendingVersion is the version of a pending entry (Store.Pending).
const pendingVersion = "pending"

// Pending reports whether the entry is of a pull secret not written yet.
func (e Entry) Pending() bool { return e.Version == pendingVersion }

func (e Entry) value() string {
	exp := int64(0)
	if !e.ExpiresAt.IsZero() {
		exp = e.ExpiresAt.Unix()
	}
	uid := string(e.UID)
	if uid == "" {
		uid = "-"
	}
	version := e.Version
	if e.Shape != "" {
		version += "." + e.Shape
	}
	v := fmt.Sprintf("%s %s %d", uid, version, exp)
	if len(e.Hosts) > 0 {
		v += " " + strings.Join(e.Hosts, ",")
	}
	return v
}

func parseEntry(k, v string) (Entry, bool) {
	ns, reg, ok := strings.Cut(k, ".")
	if !ok {
		return Entry{}, false
	}
	reg, exact := strings.CutSuffix(reg, pullsecret.ExactSuffix)
	f := strings.Fields(v)
	if len(f) != 3 && len(f) != 4 {
		return Entry{}, false
	}
	var hosts []string
	if len(f) == 4 {
		hosts = strings.Split(f[3], ",")
	}
	version, shape, _ := strings.Cut(f[1], ".")
	e := Entry{Namespace: ns, Registry: reg, Exact: exact, Version: version, Shape: shape, Hosts: hosts}
	if f[0] != "-" {
		e.UID = types.UID(f[0])
	}
	if exp, err := strconv.ParseInt(f[2], 10, 64); err == nil && exp > 0 {
		e.ExpiresAt = time.Unix(exp, 0)
	}
	return e, true
}

// Satisfies reports whether the content the entry records is as good as
// w: the same content, or, for tokens that expire, one of the same shape
// (written from the same address) that serves w's hosts and lives at
// least as long (written by another replica, or just before): replacing
// it would only churn.
func (e Entry) Satisfies(w *pullsecret.Want) bool {
	if e.Version == w.Version() {
		return true
	}
	if e.Shape != w.Shape() {
		return false // written from another address, or of unknown shape
	}
	if !w.ServedBy(e.Hosts) {
		return false // a host it does not serve yet
	}
	return !w.ExpiresAt.IsZero() && !e.ExpiresAt.IsZero() && !e.ExpiresAt.Before(w.ExpiresAt.Truncate(time.Second))
}

// Index is the in-memory view of where pull secrets live: the shards as
// the cache of regcred's namespace holds them, overlaid with what this
// replica wrote and the cache has not shown yet.
type Index struct {
	// Cache reads the shards (ConfigMaps in Namespace).
	Cache     client.Reader
	Namespace string
	// Overlay bounds how long this replica's own writes take precedence
	// over the cache (default a minute: far longer than a watch lags).
	Overlay time.Duration

	// follow, once set (Follow), holds the shards as the cache's
	// informer delivers them.
	follow *followed

	mu    sync.Mutex
	local map[string]localEntry
	// pruned is when local was last rid of entries older than Overlay.
	pruned time.Time
	now    func() time.Time
}

// localEntry is a write of this replica's; gone marks a removal.
type localEntry struct {
	entry Entry
	gone  bool
	at    time.Time
}

// shownIn reports whether a shard's data (as the cache holds it) shows
// the write l of the entry k. A removal never counts as shown: the
// cache, lagging, may show the entry absent from before another replica
// recorded it (absent, then recorded, then removed here), and the
// recording would then show through until the watch delivers the removal.
// A removal overlaid for its minute costs at most a write that finds the
// Secret there.
func (l localEntry) shownIn(k string, data map[string]string) bool {
	if l.gone {
		return false
	}
	return data[k] == l.entry.value()
}

// NewIndex returns the index of the shards in namespace, read through c.
func NewIndex(c client.Reader, namespace string) *Index {
	return &Index{Cache: c, Namespace: namespace, Overlay: time.Minute, local: map[string]localEntry{}, now: time.Now}
}

// Informer is what Follow needs of the cache's informer of ConfigMaps in
// the index's namespace; controller-runtime's cache.Informer is one.
type Informer interface {
	AddEventHandler(toolscache.ResourceEventHandler) (toolscache.ResourceEventHandlerRegistration, error)
}

// followed holds each shard as the informer last delivered it (nil for
// none): the cache's own object, shared and never modified.
type followed struct {
	namespace string
	reg       toolscache.ResourceEventHandlerRegistration
	synced    atomic.Bool
	shards    [Shards]atomic.Pointer[corev1.ConfigMap]
	// shown is called with each shard the informer delivers, after it is
	// stored (data nil for a shard deleted).
	shown func(shard int, data map[string]string)
}

// Follow makes the index read its shards from inf's events rather than
// through Cache: every admission reads one, and a cache Get maps the
// object's kind to its resource through the RESTMapper each time (about a
// third of an admission's allocations). Until inf has delivered every
// shard, reads still go through Cache. Call it before the index is used.
func (x *Index) Follow(inf Informer) error {
	f := &followed{namespace: x.Namespace, shown: x.shown}
	reg, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { f.set(obj, false) },
		UpdateFunc: func(_, obj any) { f.set(obj, false) },
		DeleteFunc: func(obj any) { f.set(obj, true) },
	})
	if err != nil {
		return err
	}
	f.reg = reg
	x.follow = f
	return nil
}

func (f *followed) set(obj any, gone bool) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok || cm.Namespace != f.namespace {
		return
	}
	i, ok := shardNumberOf(cm.Name)
	if !ok {
		return
	}
	if gone {
		cm = nil
	}
	f.shards[i].Store(cm)
	if f.shown != nil {
		var data map[string]string
		if cm != nil {
			data = cm.Data
		}
		f.shown(i, data)
	}
}

// shown drops from the overlay this replica's writes that a shard the
// informer delivered shows: from then on the cache is as new, and a
// change another replica makes after (the leader deleting the entry) must
// not be hidden by the write it follows. The informer delivers a shard's
// versions in order, so a write it has shown once is never shown undone
// but by a later change.
func (x *Index) shown(shard int, data map[string]string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k, l := range x.local {
		if shardNumber(l.entry.Namespace) == shard && l.shownIn(k, data) {
			delete(x.local, k)
		}
	}
}

// cached returns the data of the shard numbered i as the informer last
// delivered it, and whether the index follows an informer that has
// delivered every shard.
func (x *Index) cached(i int) (map[string]string, bool) {
	f := x.follow
	if f == nil || !f.ready() {
		return nil, false
	}
	if cm := f.shards[i].Load(); cm != nil {
		return cm.Data, true
	}
	return nil, true
}

// ready reports whether the informer has delivered every shard.
func (f *followed) ready() bool {
	if f.synced.Load() {
		return true
	}
	if f.reg.HasSynced() {
		f.synced.Store(true)
		return true
	}
	return false
}

// shard returns the entries of the shard numbered i, nil if it does not
// exist.
func (x *Index) shard(ctx context.Context, i int) (map[string]string, error) {
	if data, ok := x.cached(i); ok {
		return data, nil
	}
	var cm corev1.ConfigMap
	if err := x.Cache.Get(ctx, client.ObjectKey{Namespace: x.Namespace, Name: shardNames[i]}, &cm); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return cm.Data, nil
}

// Lookup returns the entry of a registry's pull secret (or its exact
// variant) in a namespace.
func (x *Index) Lookup(ctx context.Context, namespace, registry string, exact bool) (Entry, bool) {
	e, _, ok := x.lookupRaw(ctx, namespace, registry, exact)
	return e, ok
}

// lookupRaw is Lookup, with the entry's value as this replica believes
// the shard holds it: "" for none, and a value that does not parse (ok
// false) as it is.
func (x *Index) lookupRaw(ctx context.Context, namespace, registry string, exact bool) (e Entry, raw string, ok bool) {
	k := key(namespace, registry, exact)
	if l, ok := x.recent(k); ok {
		if l.gone {
			return Entry{}, "", false
		}
		return l.entry, l.entry.value(), true
	}
	data, err := x.shard(ctx, shardNumber(namespace))
	if err != nil {
		return Entry{}, "", false
	}
	raw = data[k]
	if raw == "" {
		return Entry{}, "", false
	}
	e, ok = parseEntry(k, raw)
	return e, raw, ok
}

// recent returns this replica's own write of k, if recent enough.
func (x *Index) recent(k string) (localEntry, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	l, ok := x.local[k]
	if !ok {
		return l, false
	}
	if x.now().Sub(l.at) > x.Overlay {
		delete(x.local, k)
		return l, false
	}
	return l, true
}

// remember records this replica's write of an entry (or its removal).
// Writes older than Overlay are dropped as it goes, a quarter of Overlay
// apart: after a fan-out across every namespace, the overlay holds the
// last minute's writes, not one entry per pull secret for good.
func (x *Index) remember(e Entry, gone bool) localEntry {
	x.mu.Lock()
	defer x.mu.Unlock()
	now := x.now()
	if now.Sub(x.pruned) > x.Overlay/4 {
		for k, l := range x.local {
			if now.Sub(l.at) > x.Overlay {
				delete(x.local, k)
			}
		}
		x.pruned = now
	}
	l := localEntry{entry: e, gone: gone, at: now}
	k := key(e.Namespace, e.Registry, e.Exact)
	x.overlay(k, l)
	return l
}

// overlay sets the overlay's entry k to l, unless the followed cache shows
// it already (the informer may deliver a write before its writer returns).
// The caller holds x.mu; the informer stores a shard before it calls
// shown, which takes x.mu, so that a write is either seen here or dropped
// there.
func (x *Index) overlay(k string, l localEntry) {
	if data, ok := x.cached(shardNumber(l.entry.Namespace)); ok && l.shownIn(k, data) {
		delete(x.local, k)
		return
	}
	x.local[k] = l
}

// learn sets the overlay's entry k to what the shard holds, read from the
// API server (raw, "" for none): newer than the cache may show yet. One
// that does not parse is left to the cache.
func (x *Index) learn(k, raw string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if raw == "" {
		ns, _, _ := strings.Cut(k, ".")
		x.overlay(k, localEntry{entry: Entry{Namespace: ns}, gone: true, at: x.now()})
		return
	}
	e, ok := parseEntry(k, raw)
	if !ok {
		delete(x.local, k)
		return
	}
	x.overlay(k, localEntry{entry: e, at: x.now()})
}

// unremember drops the overlay's entry k if it is still l (what remember
// returned): a write that did not happen after all.
func (x *Index) unremember(k string, l localEntry) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if cur, ok := x.local[k]; ok && cur.at.Equal(l.at) && cur.gone == l.gone && cur.entry.value() == l.entry.value() {
		delete(x.local, k)
	}
}

// InShard returns the entries of one shard (ShardNames), sorted: the
// index read a shard at a time, as a sweep across every namespace reads
// it.
func (x *Index) InShard(ctx context.Context, shard string) ([]Entry, error) {
	i, ok := shardNumberOf(shard)
	if !ok {
		return nil, fmt.Errorf("no index shard %q", shard)
	}
	data, err := x.shard(ctx, i)
	if err != nil {
		return nil, err
	}
	found := make(map[string]Entry, len(data))
	for k, v := range data {
		if e, ok := parseEntry(k, v); ok {
			found[k] = e
		}
	}
	x.mu.Lock()
	for k, l := range x.local {
		if ShardOf(l.entry.Namespace) != shard || x.now().Sub(l.at) > x.Overlay {
			continue
		}
		if l.gone {
			delete(found, k)
		} else {
			found[k] = l.entry
		}
	}
	x.mu.Unlock()
	keys := slices.Sorted(maps.Keys(found))
	out := make([]Entry, len(keys))
	for i, k := range keys {
		out[i] = found[k]
	}
	return out, nil
}

// InNamespace returns the entries of one namespace: one shard read.
func (x *Index) InNamespace(ctx context.Context, namespace string) ([]Entry, error) {
	data, err := x.shard(ctx, shardNumber(namespace))
	if err != nil {
		return nil, err
	}
	found := map[string]Entry{}
	prefix := namespace + "."
	for k, v := range data {
		if strings.HasPrefix(k, prefix) {
			if e, ok := parseEntry(k, v); ok {
				found[k] = e
			}
		}
	}
	x.mu.Lock()
	for k, l := range x.local {
		if !strings.HasPrefix(k, prefix) || x.now().Sub(l.at) > x.Overlay {
			continue
		}
		if l.gone {
			delete(found, k)
		} else {
			found[k] = l.entry
		}
	}
	x.mu.Unlock()
	out := make([]Entry, 0, len(found))
	for _, e := range found {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		return key("", out[i].Registry, out[i].Exact) < key("", out[j].Registry, out[j].Exact)
	})
	return out, nil
}
