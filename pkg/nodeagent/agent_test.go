package nodeagent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/pkg/nodetrust"
	"github.com/regcred/regcred/pkg/nodetrust/containerd"
)

const (
	ns     = "regcred"
	cmName = "regcred-node-trust"
	node   = "node-a"
)

type fixture struct {
	version int
	agent   *Agent
	cs      *fake.Clientset
	root    string
	reg     *prometheus.Registry
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	cs := fake.NewClientset(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Annotations: map[string]string{"other": "kept"}}})
	reg := prometheus.NewRegistry()
	return &fixture{
		agent: &Agent{Client: cs, Namespace: ns, ConfigMap: cmName, NodeName: node, Dir: containerd.Dir{Root: root}, Resync: time.Hour, Metrics: NewMetrics(reg)},
		cs:    cs, root: root, reg: reg,
	}
}

// publish stores what the leader would publish.
func (f *fixture) publish(t *testing.T, data string) {
	t.Helper()
	cms := f.cs.CoreV1().ConfigMaps(ns)
	f.version++ // the fake API server keeps no resourceVersion
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cmName, ResourceVersion: strconv.Itoa(f.version)}, Data: map[string]string{nodetrust.Key: data}}
	if _, err := cms.Get(t.Context(), cmName, metav1.GetOptions{}); err == nil {
		_, err = cms.Update(t.Context(), cm, metav1.UpdateOptions{})
		require.NoError(t, err)
		return
	}
	_, err := cms.Create(t.Context(), cm, metav1.CreateOptions{})
	require.NoError(t, err)
}

func (f *fixture) apply(t *testing.T) {
	t.Helper()
	f.agent.apply(t.Context(), func(name string) (*corev1.ConfigMap, error) {
		return f.cs.CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
	})
}

// status reads the Node's annotation.
func (f *fixture) status(t *testing.T) (Status, map[string]string) {
	t.Helper()
	n, err := f.cs.CoreV1().Nodes().Get(t.Context(), node, metav1.GetOptions{})
	require.NoError(t, err)
	var s Status
	raw, ok := n.Annotations[Annotation]
	require.True(t, ok, "no annotation %s: %v", Annotation, n.Annotations)
	require.NoError(t, json.Unmarshal([]byte(raw), &s))
	return s, n.Annotations
}

func (f *fixture) patches() int {
	n := 0
	for _, a := range f.cs.Actions() {
		if a.GetVerb() == "patch" && a.GetResource().Resource == "nodes" {
			n++
			p := a.(k8stesting.PatchAction)
			if p.GetName() != node {
				panic("patched another node: " + p.GetName())
			}
		}
	}
	return n
}

func encode(t *testing.T, hosts ...nodetrust.Host) string {
	t.Helper()
	b, err := nodetrust.Trust{Hosts: hosts}.Encode()
	require.NoError(t, err)
	return string(b)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestAgentApplies(t *testing.T) {
	f := newFixture(t)
	ca, err := certgen.NewCA("agent-test", time.Hour)
	require.NoError(t, err)
	harbor := nodetrust.Host{Host: "harbor:8443", CA: string(ca.CertPEM), Registries: []string{"harbor"}}
	plain := nodetrust.Host{Host: "reg:5000", PlainHTTP: true, Registries: []string{"plain"}}
	// What the agent wrote before it restarted, and an admin's file.
	require.Empty(t, containerd.Dir{Root: f.root}.Reconcile([]nodetrust.Host{plain}, nil).Errors)
	require.NoError(t, os.MkdirAll(filepath.Join(f.root, "admin.example.com"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(f.root, "admin.example.com", "hosts.toml"), []byte("server = \"https://admin.example.com\"\n"), 0o600))

	t.Run("nothing published: nothing changes, what is in force reported", func(t *testing.T) {
		f.apply(t)
		assert.True(t, f.agent.Ready())
		assert.True(t, exists(filepath.Join(f.root, "reg:5000", "hosts.toml")), "kept until a list says otherwise")
		s, ann := f.status(t)
		assert.Equal(t, Status{Hosts: map[string]nodetrust.Mode{"reg:5000": nodetrust.ModePlainHTTP}}, s)
		assert.Equal(t, "kept", ann["other"])
	})

	t.Run("published: written, reported", func(t *testing.T) {
		f.publish(t, encode(t, harbor, nodetrust.Host{Host: "admin.example.com", SkipVerify: true, Registries: []string{"admin"}}))
		f.apply(t)
		assert.True(t, exists(filepath.Join(f.root, "harbor:8443", "hosts.toml")))
		assert.True(t, exists(filepath.Join(f.root, "harbor:8443", "regcred-ca.crt")))
		assert.False(t, exists(filepath.Join(f.root, "reg:5000")), "no longer published: removed")
		b, err := os.ReadFile(filepath.Join(f.root, "admin.example.com", "hosts.toml"))
		require.NoError(t, err)
		assert.Equal(t, "server = \"https://admin.example.com\"\n", string(b))
		s, ann := f.status(t)
		assert.Equal(t, map[string]nodetrust.Mode{"harbor:8443": nodetrust.ModeCA}, s.Hosts)
		assert.Equal(t, map[string]string{"admin.example.com": "hosts.toml is not regcred's"}, s.Conflicts)
		assert.Empty(t, s.Errors)
		assert.Equal(t, "1", s.Published)
		assert.Equal(t, "kept", ann["other"], "only the agent's annotation changes")
		assert.InDelta(t, 1, testutil.ToFloat64(f.agent.Metrics.hosts.WithLabelValues("ca")), 0)
		assert.InDelta(t, 0, testutil.ToFloat64(f.agent.Metrics.hosts.WithLabelValues("plain-http")), 0)
		assert.InDelta(t, 1, testutil.ToFloat64(f.agent.Metrics.conflicts), 0)
		assert.InDelta(t, 1, testutil.ToFloat64(f.agent.Metrics.files.WithLabelValues("written")), 0)
		assert.InDelta(t, 1, testutil.ToFloat64(f.agent.Metrics.files.WithLabelValues("removed")), 0)
	})

	t.Run("the same again: no patch", func(t *testing.T) {
		before := f.patches()
		f.apply(t)
		f.apply(t)
		assert.Equal(t, before, f.patches())
	})

	t.Run("not a document: nothing touched, the error reported", func(t *testing.T) {
		f.publish(t, "registries: oops")
		f.apply(t)
		assert.True(t, exists(filepath.Join(f.root, "harbor:8443", "hosts.toml")))
		s, _ := f.status(t)
		assert.Contains(t, s.Errors[""], "not a node trust document")
		assert.Equal(t, map[string]nodetrust.Mode{"harbor:8443": nodetrust.ModeCA}, s.Hosts, "what is in force, as the files say")
		assert.InDelta(t, 1, testutil.ToFloat64(f.agent.Metrics.errors.WithLabelValues(StageRead)), 0)
	})

	t.Run("an invalid entry: its host's files stay, the others apply", func(t *testing.T) {
		bad := nodetrust.Host{Host: "harbor:8443", CA: "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n", Registries: []string{"harbor"}}
		f.publish(t, encode(t, bad, plain))
		f.apply(t)
		assert.True(t, exists(filepath.Join(f.root, "harbor:8443", "regcred-ca.crt")), "left as it was")
		assert.True(t, exists(filepath.Join(f.root, "reg:5000", "hosts.toml")))
		s, _ := f.status(t)
		assert.Equal(t, "invalid entry: left as it is", s.Errors["harbor:8443"])
		assert.Equal(t, map[string]nodetrust.Mode{"reg:5000": nodetrust.ModePlainHTTP}, s.Hosts)
	})

	t.Run("the ConfigMap deleted: what is in force is still reported", func(t *testing.T) {
		f.publish(t, encode(t, plain))
		f.apply(t)
		require.NoError(t, f.cs.CoreV1().ConfigMaps(ns).Delete(t.Context(), cmName, metav1.DeleteOptions{}))
		f.apply(t)
		s, _ := f.status(t)
		assert.Equal(t, map[string]nodetrust.Mode{"reg:5000": nodetrust.ModePlainHTTP}, s.Hosts)
		assert.Empty(t, s.Published)
		f.publish(t, encode(t, plain))
	})

	t.Run("an empty list: everything regcred wrote goes, nothing else", func(t *testing.T) {
		f.publish(t, encode(t))
		f.apply(t)
		entries, err := os.ReadDir(f.root)
		require.NoError(t, err)
		require.Len(t, entries, 1)
		assert.Equal(t, "admin.example.com", entries[0].Name())
		s, _ := f.status(t)
		assert.Empty(t, s.Hosts)
	})
}

// The annotation stays small whatever the number of hosts.
func TestStatusIsBounded(t *testing.T) {
	res := containerd.Result{Applied: map[string]nodetrust.Mode{}}
	for i := range 100 {
		host := "registry-" + strconv.Itoa(i) + ".example.com"
		res.Applied[host] = nodetrust.ModeCA
		res.Conflicts = append(res.Conflicts, containerd.Conflict{Host: host, Reason: strings.Repeat("x", 1000)})
	}
	res.Notes = append(res.Notes, containerd.Conflict{Host: "registry-1.example.com", Reason: "a note"})
	s := statusOf("1", res, nil)
	assert.Equal(t, map[string]string{"registry-1.example.com": "a note"}, s.Notes)
	assert.Len(t, s.Hosts, maxEntries)
	assert.Len(t, s.Conflicts, maxEntries)
	assert.Equal(t, 2*(100-maxEntries), s.More)
	assert.Less(t, len(s.annotation()), 16<<10, "far below the 256 KiB of a Node's annotations")
}

// Start follows the ConfigMap: a change reaches the files at once.
func TestAgentFollowsTheConfigMap(t *testing.T) {
	f := newFixture(t)
	done := make(chan error, 1)
	go func() { done <- f.agent.Start(t.Context()) }()
	require.Eventually(t, f.agent.Ready, 10*time.Second, 10*time.Millisecond)
	f.publish(t, encode(t, nodetrust.Host{Host: "reg:5000", PlainHTTP: true, Registries: []string{"plain"}}))
	require.Eventually(t, func() bool { return exists(filepath.Join(f.root, "reg:5000", "hosts.toml")) }, 10*time.Second, 10*time.Millisecond)
	f.publish(t, encode(t))
	require.Eventually(t, func() bool { return !exists(filepath.Join(f.root, "reg:5000")) }, 10*time.Second, 10*time.Millisecond)
}

func TestOptions(t *testing.T) {
	o := DefaultOptions()
	o.NodeName = "n"
	require.NoError(t, o.Validate())
	o = Options{Namespace: "Bad NS", ConfigMap: "x/y", CertsDir: "relative"}
	err := o.Validate()
	require.Error(t, err)
	for _, want := range []string{`--namespace "Bad NS"`, `--configmap "x/y"`, "--node-name (or $NODE_NAME) is required", `--certs-dir "relative": must be an absolute path`, "--resync 0s"} {
		assert.Contains(t, err.Error(), want)
	}
}
