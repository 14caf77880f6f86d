package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	admissionhandler "github.com/regcred/regcred/pkg/admission"
	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
	"github.com/regcred/regcred/pkg/secretstore"
	"github.com/regcred/regcred/pkg/status"
	"github.com/regcred/regcred/pkg/upkeep"
)

// The paths the webhook server serves.
const (
	// WebhookPath is where Pods are admitted.
	WebhookPath = "/mutate-v1-pod"
	// SecretEventsPath is where the API server tells regcred of changes
	// to its pull secrets by others.
	SecretEventsPath = "/validate-v1-secret" //nolint:gosec // a URL path, not a credential
)

// loadWait bounds how long a review waits for the first config load.
const loadWait = 3 * time.Second

// indexBatch is how long the index entry of a rewritten pull secret waits
// to be written with others of its shard.
const indexBatch = time.Second

// newConfig wires the config loader: it watches the config object and the
// Secrets it refers to, on every replica, and keeps the last good config.
func (a *App) newConfig(*rest.Config) error {
	ecrOpts := a.deps.ECR
	ecrOpts.Endpoint, ecrOpts.Budget = a.opts.ECREndpoint, a.opts.ECRTokenBudget
	minter := ecr.NewMinter(ecrOpts)
	a.loader = &configwatch.Loader{
		Source: a.opts.Source(),
		Reader: a.mgr.GetCache(),
		Build: registries.Options{
			Types:       registrytype.Builtin(registrytype.Deps{ECR: minter}),
			ClusterName: a.opts.ClusterName,
		},
		Metrics: a.metrics,
		Events:  a.mgr.GetEventRecorder("regcred"),
		LastGood: &configwatch.LastGood{
			Reader: a.mgr.GetCache(), Writer: a.mgr.GetClient(),
			Namespace: a.opts.Namespace, Name: a.opts.LastGoodSecret,
		},
	}
	// The minter keeps the tokens of the config served, and no other.
	a.loader.OnChange(func(set *registries.Set) {
		providers := make([]credentials.Provider, 0, len(set.Registries))
		for _, r := range set.Registries {
			providers = append(providers, r.Provider)
		}
		minter.Retain(providers)
	})
	return a.loader.SetupWithManager(a.mgr)
}

// shared is what the webhook shares with the upkeep workers.
type shared struct {
	namespaces namespaceLabels
	store      *secretstore.Store
	presence   *pullsecret.Presence // nil unless opted in
	mender     *upkeep.Mender
}

// newUpkeep wires the workers that keep pull secrets in step with the
// config: the leader's (syncer, token refresher, status), and every
// replica's (mender, metrics).
func (a *App) newUpkeep(restConfig *rest.Config) error {
	u := &shared{store: &secretstore.Store{
		API:   a.mgr.GetClient(),
		Index: secretstore.NewIndex(a.mgr.GetCache(), a.opts.Namespace),
		// A fan-out rewrites a shard's secrets one after the other: their
		// entries go into the shard a second's worth at a time.
		Batch: indexBatch,
		Log:   ctrllog.Log.WithName("index"),
		// A write that finds its index entry changed by another replica
		// reads the shard as the API server has it, not as cached.
		Reader: a.mgr.GetAPIReader(),
	}}
	// Every admission reads an index shard: from the informer's objects,
	// not a cache Get each time.
	cmInformer, err := a.mgr.GetCache().GetInformer(context.Background(), &corev1.ConfigMap{})
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	if err := u.store.Index.Follow(cmInformer); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	// Admissions read namespace labels on every replica: the cache runs on
	// each, and readiness waits for it.
	u.namespaces = namespaceLabels{cache: a.namespaces, api: a.mgr.GetAPIReader()}
	ex := a.opts.Exclusions()
	u.mender = upkeep.NewMender(a.loader.Current, u.store, u.store.Index, u.namespaces, ex, a.metrics, upkeep.MendOptions{})
	u.store.Raced = u.mender.RetryEntry
	syncer := &upkeep.Syncer{
		Registries: a.loader.Current,
		HasConfig:  a.loader.HasConfig,
		Index:      u.store.Index,
		Store:      u.store,
		Namespaces: u.namespaces,
		Exclusions: ex,
		Metrics:    a.metrics,
		Resync:     a.opts.Resync,
		WriteQPS:   a.opts.WriteQPS,
		WriteBurst: max(1, int(2*a.opts.WriteQPS)),
	}
	a.namespaces.OnChange(syncer.NamespaceChanged)
	refresher := upkeep.NewTokenRefresher(a.loader.Current, syncer.ConfigChanged, a.metrics)
	reporter := status.NewReporter(&status.Reporter{
		Client:          a.mgr.GetClient(),
		Namespace:       a.opts.Namespace,
		Name:            a.opts.StatusConfigMap,
		Cluster:         a.opts.ClusterName,
		Source:          a.opts.Source().String(),
		Registries:      a.loader.Current,
		Config:          a.loader.Status,
		CheckInterval:   a.opts.CheckInterval,
		RefreshInterval: a.deps.StatusRefresh,
		Metrics:         a.metrics,
	})
	// The Pod's name (the chart sets POD_NAME), else the host's plus a
	// random part.
	identity := os.Getenv("POD_NAME")
	if identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return err
		}
		identity = host + "_" + string(randomSuffix())
	}
	a.leader, err = newLeaderGroup(restConfig, a.opts, identity)
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	for _, w := range []interface{ Start(context.Context) error }{syncer, refresher, reporter} {
		a.leader.add(w)
	}
	if err := a.run(a.leader, u.mender); err != nil {
		return err
	}
	if a.opts.WarnMissingAdminSecrets {
		u.presence = pullsecret.NewPresence(a.meta)
		if err := a.run(u.presence); err != nil {
			return err
		}
	}
	if a.opts.MetricsAddr != "0" && a.opts.MetricsAddr != "" {
		if err := a.run(newMetricsServer(a.opts.MetricsAddr, a.deps.Metrics)); err != nil {
			return err
		}
	}
	a.loader.OnChange(func(set *registries.Set) {
		if u.presence != nil {
			u.presence.Track(imagePullSecretNames(set))
		}
		syncer.ConfigChanged()
		refresher.Wake()
		reporter.Wake()
	})
	a.loader.OnReject(reporter.WakeToWrite)
	a.shared = u
	return nil
}

// newWebhook registers the Pod admission handler and the handler told of
// changes to regcred's pull secrets by others.
func (a *App) newWebhook(restConfig *rest.Config) error {
	u := a.shared
	h := &admissionhandler.Handler{
		Registries: a.loader.Current,
		Secrets:    u.store,
		Namespaces: u.namespaces,
		Retry:      u.mender.Retry,
		Exclusions: a.opts.Exclusions(),
		Metrics:    a.metrics,
		Loaded:     a.loader.Loaded(),
		LoadWait:   loadWait,
		Log:        ctrllog.Log.WithName("admission").WithValues("webhook", WebhookPath),
	}
	if u.presence != nil {
		h.Presence = u.presence
	}
	// Plain handlers on controller-runtime's webhook server (its TLS,
	// certificate reload and request metrics): each reads only what it
	// needs of the review and writes its answer itself.
	a.mgr.GetWebhookServer().Register(WebhookPath, h)
	a.mgr.GetWebhookServer().Register(SecretEventsPath, &admissionhandler.SecretEvents{
		Restore: u.mender.Restore,
		Self:    whoAmI(restConfig),
		Log:     ctrllog.Log.WithName("admission").WithValues("webhook", SecretEventsPath),
	})
	return nil
}

// whoAmI returns regcred's own user name, as the API server sees it, so
// that its own writes are not taken for changes by others. Empty if the
// API server cannot tell: changes are then acted on only when a Secret is
// deleted, which regcred's own deletes never call for.
func whoAmI(restConfig *rest.Config) string {
	cs, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return ""
	}
	return r.Status.UserInfo.Username
}

// newProbes adds the health and readiness checks. A replica is ready once
// the webhook serves, the caches are synced and the config has been read
// (good or not: a replica without a good config still admits every Pod,
// unchanged, with a warning in its log).
func (a *App) newProbes(*rest.Config) error {
	if err := a.mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := a.mgr.AddReadyzCheck("webhook", a.mgr.GetWebhookServer().StartedChecker()); err != nil {
		return err
	}
	if err := a.mgr.AddReadyzCheck("caches", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !a.mgr.GetCache().WaitForCacheSync(ctx) || !a.namespaces.WaitForSync(ctx) {
			return errors.New("caches not synced yet")
		}
		return nil
	}); err != nil {
		return err
	}
	return a.mgr.AddReadyzCheck("config", func(*http.Request) error {
		if !a.loader.Status().Attempted {
			return errors.New("config not read yet")
		}
		return nil
	})
}

func imagePullSecretNames(set *registries.Set) []string {
	seen := map[string]bool{}
	var names []string
	for _, r := range set.Registries {
		if r.Mode == config.ImagePullSecret && r.Injects && !seen[r.SecretName] {
			seen[r.SecretName] = true
			names = append(names, r.SecretName)
		}
	}
	return names
}
