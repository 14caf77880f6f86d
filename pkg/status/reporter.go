package status

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/regcred/regcred/pkg/check"
	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/registries"
)

// Key is the ConfigMap key that holds the report.
const Key = "status.yaml"

// CheckRecorder counts login checks.
type CheckRecorder interface {
	LoginChecked(registry string, ok bool)
	// LoginCheckForgotten says the registry's last login result is no
	// longer this replica's to report: it left the config, its check is
	// skipped, or the leadership term ended.
	LoginCheckForgotten(registry string)
}

// Reporter runs the login checks every CheckInterval and keeps the status
// ConfigMap up to date. It runs on the leader only.
type Reporter struct {
	Client          client.Client
	Namespace, Name string
	Cluster         string
	Source          string
	Registries      func() *registries.Set
	Config          func() configwatch.Status
	// CheckInterval is how often credentials are checked; 0 disables checks.
	CheckInterval time.Duration
	// RefreshInterval is how often the status is rewritten when it changed
	// (token expiry, for one); default 30s.
	RefreshInterval time.Duration
	Metrics         CheckRecorder
	// Check runs one login check; default check.Login.
	Check func(context.Context, *registries.Registry) check.Result

	wake      chan struct{}
	wakeWrite chan struct{}
	mu        sync.Mutex
	results   map[string]check.Result
	lastCheck time.Time
	// written is the report this term last wrote, not to write it again.
	written string
	// reported are the registries whose login result this term reported;
	// only Start's goroutine uses it.
	reported map[string]bool
}

// NeedLeaderElection is true: one replica checks and writes.
func (r *Reporter) NeedLeaderElection() bool { return true }

// Wake makes the reporter check and write now (the config changed).
func (r *Reporter) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// WakeToWrite makes the reporter write now, checking only when a check is
// due (a config rejected: the registries, and their credentials, are
// those checked already; the loader's retries each reject again).
func (r *Reporter) WakeToWrite() {
	select {
	case r.wakeWrite <- struct{}{}:
	default:
	}
}

// NewReporter readies r, configured by its exported fields, and returns it.
func NewReporter(r *Reporter) *Reporter {
	r.wake = make(chan struct{}, 1)
	r.wakeWrite = make(chan struct{}, 1)
	r.results = map[string]check.Result{}
	if r.RefreshInterval == 0 {
		r.RefreshInterval = 30 * time.Second
	}
	if r.Check == nil {
		r.Check = check.Login
	}
	return r
}

// Start checks and reports until ctx ends.
func (r *Reporter) Start(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("status")
	ctx = logr.NewContext(ctx, log)
	// A new term writes at once: another leader, or someone, may have
	// changed the ConfigMap since this replica last wrote it.
	r.written = ""
	// Once the term ends, the next leader checks: this replica's results
	// would stay as they are, frozen.
	defer r.forget(map[string]bool{})
	checkNow := true
	write := func() {
		if err := r.write(ctx); err != nil && ctx.Err() == nil {
			log.Error(err, "Cannot write the status ConfigMap", "configMap", r.Namespace+"/"+r.Name)
		}
	}
	for {
		if checkNow && r.CheckInterval > 0 {
			// What changed (a config loaded or rejected) shows at once,
			// not after every registry's login check.
			write()
			r.checkAll(ctx)
		}
		write()
		wait := r.RefreshInterval
		if r.CheckInterval > 0 {
			wait = min(wait, time.Until(r.lastCheck.Add(r.CheckInterval)))
		}
		t := time.NewTimer(max(wait, 10*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
			checkNow = time.Since(r.lastCheck) >= r.CheckInterval
		case <-r.wake:
			t.Stop()
			checkNow = true
		case <-r.wakeWrite:
			t.Stop()
			checkNow = time.Since(r.lastCheck) >= r.CheckInterval
		}
	}
}

// checkAll checks every registry of the current set, a few at a time.
func (r *Reporter) checkAll(ctx context.Context) {
	log := logr.FromContextOrDiscard(ctx)
	set := r.Registries()
	results := make([]check.Result, len(set.Registries))
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i, reg := range set.Registries {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, 45*time.Second)
			defer cancel()
			results[i] = r.Check(cctx, reg)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return // the term ended mid-round: its checks were cut short, not failed
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastCheck = time.Now()
	r.results = map[string]check.Result{}
	checked := map[string]bool{}
	for _, res := range results {
		r.results[res.Registry] = res
		if res.Skipped {
			continue
		}
		checked[res.Registry] = true
		r.Metrics.LoginChecked(res.Registry, res.OK)
		if !res.OK {
			// The message names the registry and the failure, never a credential.
			log.Info("Registry login check failed", "registry", res.Registry, "reason", res.Message)
		}
	}
	// A registry that left the config, or whose check is skipped, has no
	// result.
	r.forget(checked)
}

// forget drops the login results reported of the registries not in keep.
func (r *Reporter) forget(keep map[string]bool) {
	if r.reported == nil {
		r.reported = map[string]bool{}
	}
	for name := range r.reported {
		if !keep[name] {
			r.Metrics.LoginCheckForgotten(name)
			delete(r.reported, name)
		}
	}
	for name := range keep {
		r.reported[name] = true
	}
}

func (r *Reporter) write(ctx context.Context) error {
	r.mu.Lock()
	results := r.results
	r.mu.Unlock()
	rep := Build(r.Cluster, r.Registries(), r.Config(), r.Source, results)
	data, err := yaml.Marshal(rep)
	if err != nil {
		return err
	}
	if string(data) == r.written {
		return nil
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: r.Name,
		Labels: map[string]string{"app.kubernetes.io/managed-by": "regcred"}}}
	cm.Data = map[string]string{Key: string(data)}
	err = r.Client.Update(ctx, cm)
	if apierrors.IsNotFound(err) {
		cm.ResourceVersion = ""
		err = r.Client.Create(ctx, cm)
	}
	if err != nil {
		return err
	}
	r.written = string(data)
	return nil
}
