package nodetrust

import (
	"context"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/registries"
)

// LabelNodeTrust marks the ConfigMap the leader publishes.
const LabelNodeTrust = "regcred.io/node-trust"

// Recorder counts what was published.
type Recorder interface {
	// NodeTrustPublished records the hosts published, per mode, and how
	// many notes came with them.
	NodeTrustPublished(hosts map[Mode]int, notes int)
}

// Publisher keeps the ConfigMap that node agents read up to date with
// what the config says nodes must trust. It runs on the leader, writes
// only when the content changes, and never before a config was loaded
// (an empty list would make every agent remove what it wrote).
type Publisher struct {
	// Client writes the ConfigMap; Reader reads it (the cache of
	// regcred's namespace).
	Client client.Client
	Reader client.Reader
	// Namespace and Name are the ConfigMap's.
	Namespace, Name string
	Registries      func() *registries.Set
	HasConfig       func() bool
	Metrics         Recorder
	// Resync is how often the ConfigMap is checked even without a config
	// change (someone edited or deleted it); default 1m.
	Resync time.Duration

	wake      chan struct{}
	lastNotes string
	// written is the document this publisher last wrote. The cache may
	// not have seen that write yet: while what the config says differs
	// from it, the cache holding what the config says proves nothing
	// (a change undone before the cache saw it).
	written string
}

// NewPublisher readies p, configured by its exported fields, and returns
// it.
func NewPublisher(p *Publisher) *Publisher {
	p.wake = make(chan struct{}, 1)
	if p.Resync == 0 {
		p.Resync = time.Minute
	}
	return p
}

// NeedLeaderElection is true: one replica writes.
func (p *Publisher) NeedLeaderElection() bool { return true }

// Wake makes the publisher publish now (the config changed).
func (p *Publisher) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Start publishes until ctx ends.
func (p *Publisher) Start(ctx context.Context) error {
	log := logr.FromContextOrDiscard(ctx).WithName("node-trust")
	ctx = logr.NewContext(ctx, log)
	for {
		wait := p.Resync
		retry, err := p.publish(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error(err, "Cannot publish what nodes must trust", "configMap", p.Namespace+"/"+p.Name)
		}
		if retry || err != nil {
			wait = min(wait, time.Second)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-p.wake:
			t.Stop()
		}
	}
}

// publish writes the ConfigMap if it differs; retry says to try again
// soon (the cache was behind the API server).
func (p *Publisher) publish(ctx context.Context) (retry bool, err error) {
	if !p.HasConfig() {
		return false, nil
	}
	log := logr.FromContextOrDiscard(ctx)
	t := Decide(p.Registries().Registries)
	if notes := strings.Join(t.Notes, "\n"); notes != p.lastNotes {
		for _, n := range t.Notes {
			log.Info("Node trust: "+n, "configMap", p.Namespace+"/"+p.Name)
		}
		p.lastNotes = notes
	}
	byMode := map[Mode]int{}
	for _, h := range t.Hosts {
		byMode[h.Mode()]++
	}
	if p.Metrics != nil {
		p.Metrics.NodeTrustPublished(byMode, len(t.Notes))
	}
	data, err := t.Encode()
	if err != nil {
		return false, err
	}
	var current corev1.ConfigMap
	err = p.Reader.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: p.Name}, &current)
	if err == nil && current.Data[Key] == string(data) && (p.written == "" || p.written == string(data)) {
		return false, nil
	}
	if err != nil && !apierrors.IsNotFound(err) {
		return false, err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: map[string]string{
			"app.kubernetes.io/managed-by": "regcred", LabelNodeTrust: "true",
		}},
		Data: map[string]string{Key: string(data)},
	}
	if apierrors.IsNotFound(err) {
		err = p.Client.Create(ctx, cm)
	} else {
		err = p.Client.Update(ctx, cm)
	}
	if apierrors.IsAlreadyExists(err) || apierrors.IsNotFound(err) {
		return true, nil // the cache was behind: read it again
	}
	if err != nil {
		return false, err
	}
	p.written = string(data)
	hosts := make([]string, 0, len(t.Hosts))
	for _, h := range t.Hosts {
		hosts = append(hosts, h.Host+"="+string(h.Mode()))
	}
	log.Info("Published what nodes must trust", "configMap", p.Namespace+"/"+p.Name, "hosts", hosts)
	return false, nil
}
