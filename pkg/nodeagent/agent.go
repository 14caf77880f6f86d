package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/regcred/regcred/pkg/nodetrust"
	"github.com/regcred/regcred/pkg/nodetrust/containerd"
)

// FieldManager is the agent's name in the Node's managed fields.
const FieldManager = "regcred-node-agent"

// Agent keeps a node's containerd files in step with what the leader
// publishes.
type Agent struct {
	// Client reads the ConfigMap (list and watch of that one name)
	// and patches the Node's annotation.
	Client               kubernetes.Interface
	Namespace, ConfigMap string
	NodeName             string
	Dir                  containerd.Dir
	Resync               time.Duration
	Metrics              *Metrics

	ready    atomic.Bool
	lastNote string
	patched  string
}

// Ready reports whether the agent has applied what is published (or found
// nothing published) at least once.
func (a *Agent) Ready() bool { return a.ready.Load() }

// Start applies what is published, on every change of the ConfigMap and
// every Resync, until ctx ends.
func (a *Agent) Start(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx)
	// The one ConfigMap, by name: what RBAC grants the agent (list and
	// watch with resourceNames need this field selector).
	factory := informers.NewSharedInformerFactoryWithOptions(a.Client, 0,
		informers.WithNamespace(a.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", a.ConfigMap).String()
		}))
	cms := factory.Core().V1().ConfigMaps()
	changed := make(chan struct{}, 1)
	wake := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := cms.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    wake,
		UpdateFunc: func(_, obj any) { wake(obj) },
		DeleteFunc: wake,
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	log.Info("Waiting for what nodes must trust", "configMap", a.Namespace+"/"+a.ConfigMap, "node", a.NodeName, "certsDir", a.Dir.Root)
	if !cache.WaitForCacheSync(ctx.Done(), cms.Informer().HasSynced) {
		return ctx.Err()
	}
	lister := cms.Lister().ConfigMaps(a.Namespace)
	for {
		a.apply(ctx, lister.Get)
		t := time.NewTimer(a.Resync)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-changed:
			t.Stop()
		}
	}
}

// apply reads what is published, reconciles the files, and reports.
func (a *Agent) apply(ctx context.Context, get func(name string) (*corev1.ConfigMap, error)) {
	log := logr.FromContextOrDiscard(ctx)
	cm, err := get(a.ConfigMap)
	if apierrors.IsNotFound(err) {
		// Nothing published (yet): what is on the node stays. Only a
		// published list, even empty, removes what the agent wrote.
		a.note(log, "Nothing published yet: the node's files are left as they are", "configMap", a.Namespace+"/"+a.ConfigMap)
		a.report(ctx, untouched("", a.Dir.InForce(), nil))
		a.ready.Store(true)
		return
	}
	if err != nil {
		log.Error(err, "Cannot read what nodes must trust", "configMap", a.Namespace+"/"+a.ConfigMap)
		a.Metrics.Failed(StageRead)
		return
	}
	d, err := nodetrust.Decode([]byte(cm.Data[nodetrust.Key]))
	readErrs := map[string]string{}
	if err != nil {
		a.Metrics.Failed(StageRead)
		a.note(log, "What is published is not all valid: invalid entries are left as they are on the node", "configMap", a.Namespace+"/"+a.ConfigMap, "problems", err.Error())
		if d.Hosts == nil && d.Invalid == nil {
			// Not a document at all: touch nothing.
			readErrs[""] = err.Error()
			a.report(ctx, untouched(cm.ResourceVersion, a.Dir.InForce(), readErrs))
			a.ready.Store(true)
			return
		}
		for _, h := range d.Invalid {
			readErrs[h] = "invalid entry: left as it is"
		}
	}
	now := time.Now()
	res := a.Dir.Reconcile(d.Hosts, d.Invalid)
	a.Metrics.Applied(res, now)
	for _, h := range res.Written {
		log.Info("Wrote containerd's files for a registry host", "host", h, "mode", res.Applied[h])
	}
	for _, h := range res.Removed {
		log.Info("Removed containerd's files of a registry host no registry needs", "host", h)
	}
	for _, e := range res.Errors {
		log.Error(e.Err, "Cannot apply a registry host's files", "host", e.Host)
	}
	var conflicts []string
	for _, c := range res.Conflicts {
		conflicts = append(conflicts, c.Host+": "+c.Reason)
	}
	if len(conflicts) > 0 {
		a.note(log, "Registry hosts left alone: files regcred did not write are there", "conflicts", strings.Join(conflicts, "; "))
	}
	a.report(ctx, statusOf(cm.ResourceVersion, res, readErrs))
	a.ready.Store(true)
}

// note logs msg once, until it changes.
func (a *Agent) note(log logr.Logger, msg string, kv ...any) {
	key := msg + fmt.Sprint(kv...)
	if key == a.lastNote {
		return
	}
	a.lastNote = key
	log.Info(msg, kv...)
}

// report patches the Node's annotation when the status changed.
func (a *Agent) report(ctx context.Context, s Status) {
	value := s.annotation()
	if value == a.patched {
		return
	}
	body, err := s.patch()
	if err == nil {
		_, err = a.Client.CoreV1().Nodes().Patch(ctx, a.NodeName, types.MergePatchType, body, metav1.PatchOptions{FieldManager: FieldManager})
	}
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			logr.FromContextOrDiscard(ctx).Error(err, "Cannot report what was applied on the Node", "node", a.NodeName, "annotation", Annotation)
			a.Metrics.Failed(StageStatus)
		}
		return
	}
	a.patched = value
}
