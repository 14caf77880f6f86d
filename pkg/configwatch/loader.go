package configwatch

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/registries"
)

// Recorder is told of every load, good or bad.
type Recorder interface {
	ConfigReload(ok bool)
}

// EventRecorder records an Event on the config object (events.k8s.io).
type EventRecorder interface {
	Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any)
}

// Status is the outcome of the loads so far.
type Status struct {
	// Version is the resourceVersion of the config object now serving;
	// empty before the first good load.
	Version string
	// Loads counts good loads.
	Loads int
	// LastError is the error of the last load, nil if it succeeded.
	LastError error
	// RejectedVersion is the resourceVersion of the config object whose load failed last.
	RejectedVersion string
	// Attempted is true once a load has been tried.
	Attempted bool
	// FromLastGood is set when the config serving is the last good one
	// kept from before this replica started (the stored one is broken).
	FromLastGood bool
	// LastGoodSavedAt is when that config was loaded.
	LastGoodSavedAt time.Time
}

// Loader loads and watches the config.
type Loader struct {
	Source Source
	// Reader reads the config object and the Secrets it refers to (a cache
	// of regcred's own namespace).
	Reader client.Reader
	// Build tunes the compile step; Version, StoredIn and Secrets
	// are set by the loader.
	Build   registries.Options
	Metrics Recorder
	Events  EventRecorder
	// LastGood keeps the last good config across restarts; nil keeps it
	// in memory only.
	LastGood *LastGood

	current atomic.Pointer[registries.Set]
	// loaded is closed once a load has been tried.
	loaded     chan struct{}
	loadedOnce sync.Once
	// watched holds the names of the Secrets the config refers to.
	watched atomic.Pointer[map[string]bool]

	// reloading serialises loads (the start's and the controller's):
	// each reads the newest cached state, so the last to run serves the
	// newest config, watches its Secrets, keeps it and tells the
	// listeners last.
	reloading sync.Mutex

	mu        sync.Mutex
	status    Status
	listeners []func(*registries.Set)
	rejected  []func()
}

// Current returns the set now serving: the last good config, or an empty
// set before any.
func (l *Loader) Current() *registries.Set {
	if s := l.current.Load(); s != nil {
		return s
	}
	return emptySet
}

var emptySet = registries.Empty()

// Loaded is closed once a load has been tried, good or not.
func (l *Loader) Loaded() <-chan struct{} {
	l.loadedOnce.Do(func() {
		if l.loaded == nil {
			l.loaded = make(chan struct{})
		}
	})
	return l.loaded
}

// HasConfig reports whether a good config has been loaded.
func (l *Loader) HasConfig() bool { return l.current.Load() != nil }

// Status returns the outcome of the loads so far.
func (l *Loader) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

// OnChange registers f to be called with each newly loaded set.
func (l *Loader) OnChange(f func(*registries.Set)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.listeners = append(l.listeners, f)
}

// OnReject registers f to be called after each rejected load.
func (l *Loader) OnReject(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rejected = append(l.rejected, f)
}

// Reload reads, validates and compiles the config, and swaps it in if good.
func (l *Loader) Reload(ctx context.Context) error {
	l.reloading.Lock()
	defer l.reloading.Unlock()
	log := logr.FromContextOrDiscard(ctx).WithValues("config", l.Source.String())
	data, obj, err := l.Source.Read(ctx, l.Reader)
	var version string
	var set *registries.Set
	if obj != nil {
		version = obj.GetResourceVersion()
	}
	recorder := &recordingReader{inner: SecretReader{Reader: l.Reader, Namespace: l.Source.Namespace}, seen: map[string][]byte{}}
	if err == nil {
		l.watch(registries.Referenced(data))
		opts := l.Build
		opts.StoredIn = l.Source.StoredIn
		opts.Secrets = recorder
		opts.Version = version
		set, err = registries.Load(ctx, data, opts)
	}
	defer l.markLoaded()
	if err == nil && l.LastGood != nil {
		if serr := l.LastGood.save(ctx, snapshot{data: data, values: recorder.seen, savedAt: time.Now()}); serr != nil {
			log.Error(serr, "Cannot keep the last good config; a restart with a broken config would serve none")
		}
	}
	// A read that failed for want of the API server is tried again (the
	// controller's backoff): no change of the config would come to load
	// it. A config that is wrong waits for its next change.
	var retry error
	if err != nil && (isReadError(err) || recorder.failed()) {
		retry = errors.New("the config or a Secret it refers to could not be read; loading it again later")
	}
	if err != nil && !l.HasConfig() {
		if last, ok := l.fromLastGood(ctx); ok {
			l.serveLastGood(ctx, last, err, version, obj)
			return retry
		}
	}

	l.mu.Lock()
	l.status.Attempted = true
	if err != nil {
		l.status.LastError, l.status.RejectedVersion = err, version
		rejected := slices.Clone(l.rejected)
		l.mu.Unlock()
		defer func() {
			for _, f := range rejected {
				f()
			}
		}()
		l.Metrics.ConfigReload(false)
		// Messages name registries and fields, never credentials.
		serving := "the last good config keeps serving"
		if !l.HasConfig() {
			serving = "no registry is served until a valid config is stored"
		}
		log.Error(err, "Config rejected; "+serving, "version", version)
		if obj != nil && l.Events != nil {
			l.Events.Eventf(obj, nil, corev1.EventTypeWarning, "ConfigRejected", "Load", "Config rejected, %s: %s", serving, truncate(err.Error(), 900))
		}
		return retry
	}
	l.current.Store(set)
	l.status.Version, l.status.LastError = version, nil
	l.status.FromLastGood, l.status.LastGoodSavedAt = false, time.Time{}
	l.status.Loads++
	listeners := slices.Clone(l.listeners)
	l.mu.Unlock()
	l.Metrics.ConfigReload(true)
	log.Info("Config loaded", "version", version, "registries", len(set.Registries))
	if l.Events != nil {
		noun := "registries"
		if len(set.Registries) == 1 {
			noun = "registry"
		}
		l.Events.Eventf(obj, nil, corev1.EventTypeNormal, "ConfigLoaded", "Load", "Config loaded: %d %s", len(set.Registries), noun)
	}
	for _, f := range listeners {
		f(set)
	}
	return nil
}

func (l *Loader) markLoaded() {
	l.Loaded()
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.loaded:
	default:
		close(l.loaded)
	}
}

// lastGood is the last good config kept from before this replica started.
type lastGood struct {
	snap snapshot
	set  *registries.Set
}

// fromLastGood loads the kept config, with the values it was loaded with.
func (l *Loader) fromLastGood(ctx context.Context) (lastGood, bool) {
	if l.LastGood == nil {
		return lastGood{}, false
	}
	snap, ok := l.LastGood.load(ctx)
	if !ok {
		return lastGood{}, false
	}
	opts := l.Build
	opts.StoredIn = l.Source.StoredIn
	opts.Secrets = snapshotReader(snap.values)
	set, err := registries.Load(ctx, snap.data, opts)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "The last good config kept from before does not load either")
		return lastGood{}, false
	}
	return lastGood{snap: snap, set: set}, true
}

// serveLastGood serves the kept config while the stored one is rejected,
// and reports both.
func (l *Loader) serveLastGood(ctx context.Context, last lastGood, rejected error, version string, obj client.Object) {
	log := logr.FromContextOrDiscard(ctx).WithValues("config", l.Source.String())
	l.mu.Lock()
	l.current.Store(last.set)
	l.status.Attempted = true
	l.status.LastError, l.status.RejectedVersion = rejected, version
	l.status.FromLastGood, l.status.LastGoodSavedAt = true, last.snap.savedAt
	listeners := slices.Clone(l.listeners)
	rejectedFns := slices.Clone(l.rejected)
	l.mu.Unlock()
	l.Metrics.ConfigReload(false)
	log.Error(rejected, "Config rejected; serving the last good config, kept from before this replica started", "savedAt", last.snap.savedAt.Format(time.RFC3339), "registries", len(last.set.Registries))
	if obj != nil && l.Events != nil {
		l.Events.Eventf(obj, nil, corev1.EventTypeWarning, "ConfigRejected", "Load", "Config rejected; serving the last good config, loaded at %s: %s", last.snap.savedAt.Format(time.RFC3339), truncate(rejected.Error(), 800))
	}
	for _, f := range listeners {
		f(last.set)
	}
	for _, f := range rejectedFns {
		f()
	}
}

func (l *Loader) watch(names []string) {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	l.watched.Store(&m)
}

// relevant reports whether a change to obj may change the config.
func (l *Loader) relevant(obj client.Object) bool {
	if obj.GetNamespace() != l.Source.Namespace {
		return false
	}
	_, isSecret := obj.(*corev1.Secret)
	if obj.GetName() == l.Source.Name && isSecret == (l.Source.StoredIn == config.InSecret) {
		return true
	}
	if w := l.watched.Load(); isSecret && w != nil {
		return (*w)[obj.GetName()]
	}
	return false
}

// Reconcile reloads the config; every relevant change maps to one key.
func (l *Loader) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	return reconcile.Result{}, l.Reload(ctx)
}

// SetupWithManager watches the config object and the Secrets it refers to.
// It runs on every replica: each one serves admissions.
func (l *Loader) SetupWithManager(mgr manager.Manager) error {
	key := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: l.Source.Namespace, Name: l.Source.Name}}}
	})
	relevant := predicate.NewPredicateFuncs(l.relevant)
	if err := mgr.Add(initialLoad{l: l, synced: mgr.GetCache().WaitForCacheSync, retry: time.Second}); err != nil {
		return err
	}
	return builder.ControllerManagedBy(mgr).
		Named("config").
		WithOptions(controller.Options{NeedLeaderElection: ptr.To(false), MaxConcurrentReconciles: 1}).
		Watches(&corev1.ConfigMap{}, key, builder.WithPredicates(relevant)).
		Watches(&corev1.Secret{}, key, builder.WithPredicates(relevant)).
		Complete(l)
}

// initialLoad loads the config once the caches are synced, even when the
// config object does not exist (then no watch event would ever come).
type initialLoad struct {
	l      *Loader
	synced func(context.Context) bool
	// retry is the first wait before a load whose read failed is tried
	// again; it doubles up to maxRetry.
	retry time.Duration
}

func (i initialLoad) NeedLeaderElection() bool { return false }

func (i initialLoad) Start(ctx context.Context) error {
	if !i.synced(ctx) {
		return nil
	}
	// A load whose read failed is tried again, as the controller does
	// its own: when the config object does not exist, no event would.
	for wait := i.retry; i.l.Reload(ctx) != nil; wait = min(2*wait, maxRetry) {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

// maxRetry bounds the wait between two tries of the start's load.
const maxRetry = 5 * time.Minute

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
