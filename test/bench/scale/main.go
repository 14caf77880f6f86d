// Command scale is make bench-scale: regcred in a cluster of 10,000
// namespaces on the test bed's API server, with 30,000 Secrets that are
// not regcred's and two registries served in every namespace (20,000 pull
// secrets, one registry an ECR registry with short tokens behind a local
// ECR endpoint). It prints regcred's memory, its start-up time and first
// admission's latency, the index's size, and how long a token refresh and
// a config change take to reach every namespace at regcred's write rate.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/configwatch"
	"github.com/regcred/regcred/pkg/credentials/ecr"
	"github.com/regcred/regcred/pkg/pullsecret"
	"github.com/regcred/regcred/pkg/registries"
	"github.com/regcred/regcred/pkg/registrytype"
	"github.com/regcred/regcred/pkg/secretstore"
	"github.com/regcred/regcred/test/bench/harness"
	"github.com/regcred/regcred/test/testbed"
)

type options struct {
	regcred    string
	namespaces int
	unrelated  int
	workers    int
	args, env  []string
	configFan  bool
	tokenLife  time.Duration
	work       string
}

func main() {
	var o options
	args, env := "--upkeep-write-qps=100,--kube-api-qps=250", ""
	flag.StringVar(&o.regcred, "regcred", "bin/regcred", "regcred's binary.")
	flag.IntVar(&o.namespaces, "namespaces", 10000, "Namespaces; each gets both registries' pull secrets.")
	flag.IntVar(&o.unrelated, "unrelated-secrets", 30000, "Secrets that are not regcred's, spread over the namespaces.")
	flag.IntVar(&o.workers, "workers", 32, "Concurrent writers building the cluster.")
	flag.StringVar(&args, "regcred-args", args, "More flags for regcred, comma-separated (e.g. --upkeep-write-qps=100,--kube-api-qps=250).")
	flag.StringVar(&env, "regcred-env", env, "Environment for regcred, comma-separated (e.g. GOGC=50).")
	flag.BoolVar(&o.configFan, "config-change", true, "Also time a config change across every namespace.")
	flag.DurationVar(&o.tokenLife, "ecr-token-life", 6*time.Minute, "Life of the ECR tokens; regcred refreshes them at half-life, which must leave time for a fan-out.")
	flag.StringVar(&o.work, "work", "", "Directory for logs and certificates (default: a new temporary one).")
	flag.Parse()
	o.args = harness.List(args)
	o.env = harness.List(env)
	harness.Main("bench-scale", func(ctx context.Context) error { return run(ctx, o) })
}

// say reports progress on stderr; the table goes to stdout.
var say = harness.Sayer("bench-scale")

const (
	ecrHost        = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
	staticHost     = "registry.bench.example:5000"
	keyID          = "AKIABENCHBENCHBENCH1"
	keySecret      = "bench-secret-access-key" //nolint:gosec // a made-up key for a local endpoint
	registryConfig = `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- name: static
  type: other
  url: ` + staticHost + `
  username: {value: bench}
  password: {secretKeyRef: {name: registry-creds, key: password}}
- name: ecr
  type: ecr
  url: https://` + ecrHost + `
  ecr:
    auth: access-key
    accessKeyID: {secretKeyRef: {name: registry-creds, key: aws-id}}
    secretAccessKey: {secretKeyRef: {name: registry-creds, key: aws-secret}}
`
)

func nsName(i int) string { return fmt.Sprintf("team-%05d", i) }

func run(ctx context.Context, o options) error {
	if o.work == "" {
		dir, err := os.MkdirTemp("", "regcred-bench-scale-")
		if err != nil {
			return err
		}
		o.work = dir
	}
	start := time.Now()
	say("starting kube-apiserver and etcd (logs and certificates in %s)", o.work)
	cl, err := harness.StartCluster(o.work)
	if err != nil {
		return err
	}
	defer cl.Stop()
	// Short-lived ECR tokens: regcred refreshes one at half-life, inside
	// the benchmark.
	endpoint, err := testbed.StartECR(cl.CA, o.tokenLife)
	if err != nil {
		return err
	}
	defer endpoint.Stop()
	endpoint.AddAccessKey(keyID, keySecret)
	caFile := filepath.Join(o.work, "ca.crt")
	if err := os.WriteFile(caFile, cl.CA.CertPEM, 0o600); err != nil {
		return err
	}
	if err := cl.SetupRegcred(ctx, registryConfig, map[string]string{"password": "bench-password-1", "aws-id": keyID, "aws-secret": keySecret}); err != nil {
		return err
	}

	r := result{namespaces: o.namespaces, unrelated: o.unrelated}
	if err := build(ctx, o, cl, endpoint, &r); err != nil {
		return err
	}

	say("starting regcred")
	ecrCallsBefore := len(endpoint.Calls())
	env := append([]string{"AWS_CA_BUNDLE=" + caFile, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull}, o.env...)
	rc, err := cl.StartRegcred("regcred", o.regcred, append([]string{"--ecr-endpoint-url=" + endpoint.URL}, o.args...), env)
	if err != nil {
		return err
	}
	defer rc.Stop()
	plain := &http.Client{Timeout: 10 * time.Second}
	if r.startup, err = harness.WaitReady(ctx, plain, rc.ReadyURL, rc.Process, 5*time.Minute); err != nil {
		return err
	}
	say("regcred ready in %s", r.startup.Round(time.Millisecond))
	if err := firstAdmissions(ctx, cl, rc, &r); err != nil {
		return err
	}

	// The leader's first pass: every pull secret checked against the
	// config, each ECR secret given the token regcred minted.
	say("the leader checks every pull secret; each ECR one gets regcred's token")
	m := metrics{url: rc.MetricsURL, client: plain}
	if r.tokenFan, err = m.waitWritten(ctx, "ecr", o.namespaces, 0, time.Now()); err != nil {
		return err
	}
	r.ecrCallsStart = len(endpoint.Calls()) - ecrCallsBefore
	firstPass, err := m.value(ctx, "regcred_pull_secrets_written_total", `registry="ecr"`)
	if err != nil {
		return err
	}
	say("ECR pull secrets of %d namespaces rewritten in %s, with %d token request(s)", o.namespaces, r.tokenFan.Round(time.Second), r.ecrCallsStart)
	if err := steadyAdmissions(ctx, cl, rc, &m, &r); err != nil {
		return err
	}

	// Flat in what is not regcred's: more Secrets and Pods regcred does
	// not serve, and its memory after.
	if r.heapBefore, err = m.value(ctx, "go_memstats_heap_inuse_bytes", ""); err != nil {
		return err
	}
	if r.memBefore, err = rc.Memory(); err != nil {
		return err
	}
	say("adding %d more Secrets and %d Pods that are not regcred's", o.namespaces, o.namespaces/5)
	if err := unrelated(ctx, cl, o, o.namespaces, o.namespaces/5, "more"); err != nil {
		return err
	}
	time.Sleep(5 * time.Second)
	if r.heapAfter, err = m.value(ctx, "go_memstats_heap_inuse_bytes", ""); err != nil {
		return err
	}
	if r.memAfter, err = rc.Memory(); err != nil {
		return err
	}

	// A token refresh, then a config change, across every namespace.
	say("waiting for regcred's token refresh (at half of the token's %s life)", o.tokenLife)
	for len(endpoint.Calls()) <= ecrCallsBefore+r.ecrCallsStart {
		if rc.Exited() || ctx.Err() != nil {
			return errors.New("regcred exited")
		}
		time.Sleep(100 * time.Millisecond)
	}
	refresh := endpoint.Calls()[ecrCallsBefore+r.ecrCallsStart].Time
	if r.refreshFan, err = m.waitWritten(ctx, "ecr", o.namespaces, int(firstPass), refresh); err != nil {
		return err
	}
	r.ecrCallsRefresh = len(endpoint.Calls()) - ecrCallsBefore - r.ecrCallsStart
	say("token refresh reached %d namespaces in %s, with %d token request(s)", o.namespaces, r.refreshFan.Round(time.Second), r.ecrCallsRefresh)
	if o.configFan {
		before, err := m.value(ctx, "regcred_pull_secrets_written_total", `registry="static"`)
		if err != nil {
			return err
		}
		var creds corev1.Secret
		if err := cl.Client.Get(ctx, client.ObjectKey{Namespace: harness.RegcredNamespace, Name: "registry-creds"}, &creds); err != nil {
			return err
		}
		creds.Data["password"] = []byte("bench-password-2")
		changed := time.Now()
		if err := cl.Client.Update(ctx, &creds); err != nil {
			return err
		}
		say("changed registry static's password")
		if r.configFan, err = m.waitWritten(ctx, "static", o.namespaces, int(before), changed); err != nil {
			return err
		}
		say("config change reached %d namespaces in %s", o.namespaces, r.configFan.Round(time.Second))
	}
	if r.memEnd, err = rc.Memory(); err != nil {
		return err
	}
	r.writeQPS, r.apiQPS = flagValue(o.args, "--upkeep-write-qps", "20"), flagValue(o.args, "--kube-api-qps", "50")
	r.env = strings.Join(o.env, " ")
	r.print(os.Stdout)
	say("done in %s", time.Since(start).Round(time.Second))
	return nil
}

// build makes the cluster: namespaces, unrelated Secrets, and the pull
// secrets with their index as a regcred that ran before would have left
// them.
func build(ctx context.Context, o options, cl *harness.Cluster, endpoint *testbed.ECR, r *result) error {
	t := time.Now()
	say("creating %d namespaces", o.namespaces)
	if err := parallel(ctx, o.workers, o.namespaces, func(i int) error {
		return cl.CreateNamespace(ctx, nsName(i), map[string]string{"team": strconv.Itoa(i % 50)})
	}); err != nil {
		return err
	}
	say("creating %d Secrets that are not regcred's", o.unrelated)
	if err := unrelated(ctx, cl, o, o.unrelated, 0, "app"); err != nil {
		return err
	}
	say("writing %d pull secrets and their index", 2*o.namespaces)
	// The ECR client here trusts the local endpoint itself; the SDK refuses
	// a CA bundle from the environment on top.
	for _, v := range []string{"AWS_CA_BUNDLE", "AWS_PROFILE"} {
		if err := os.Unsetenv(v); err != nil {
			return err
		}
	}
	set, err := registries.Load(ctx, []byte(registryConfig), registries.Options{
		Types:       registrytype.Builtin(registrytype.Deps{ECR: ecr.NewMinter(ecr.Options{Endpoint: endpoint.URL, HTTPClient: endpoint.Client})}),
		ClusterName: "bench",
		StoredIn:    config.InConfigMap,
		Secrets:     configwatch.SecretReader{Reader: cl.Client, Namespace: harness.RegcredNamespace},
	})
	if err != nil {
		return err
	}
	seed := &seeder{Client: cl.Client, shards: map[string]map[string]string{}}
	store := &secretstore.Store{API: seed, Index: secretstore.NewIndex(nothing{}, harness.RegcredNamespace)}
	var wants []*pullsecret.Want
	for _, reg := range set.Registries {
		w, err := reg.Want(ctx, registries.Need{})
		if err != nil {
			return err
		}
		wants = append(wants, w)
	}
	if err := parallel(ctx, o.workers, o.namespaces, func(i int) error {
		for _, w := range wants {
			if _, err := store.Apply(ctx, nsName(i), w, false); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if r.indexEntries, r.indexBytes, err = seed.flush(ctx); err != nil {
		return err
	}
	r.build = time.Since(t)
	say("cluster built in %s", r.build.Round(time.Second))
	return nil
}

// unrelated creates Secrets (and Pods) that are not regcred's, spread
// over the namespaces, Pods without images regcred serves.
func unrelated(ctx context.Context, cl *harness.Cluster, o options, secrets, pods int, prefix string) error {
	value := []byte(strings.Repeat("s", 512))
	if err := parallel(ctx, o.workers, secrets, func(i int) error {
		return cl.Client.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: nsName(i % o.namespaces), Name: fmt.Sprintf("%s-%d", prefix, i), Labels: map[string]string{"app": "db"}},
			Data:       map[string][]byte{"password": value, "username": []byte("app")},
		})
	}); err != nil {
		return err
	}
	return parallel(ctx, o.workers, pods, func(i int) error {
		return cl.Client.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: nsName(i % o.namespaces), Name: fmt.Sprintf("%s-%d", prefix, i)},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}}},
		})
	})
}

// parallel runs f(0..n-1) on workers goroutines; the first error wins.
func parallel(ctx context.Context, workers, n int, f func(int) error) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := f(i); err != nil && !apierrors.IsAlreadyExists(err) {
					once.Do(func() { first = fmt.Errorf("item %d: %w", i, err) })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// seeder writes Secrets through to the API server and keeps the index's
// merge patches, to write each shard once at the end: what many
// admissions would have left, in a fraction of the writes.
type seeder struct {
	client.Client
	mu     sync.Mutex
	shards map[string]map[string]string
}

func (s *seeder) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	cm, ok := obj.(*corev1.ConfigMap)
	if !ok || cm.Namespace != harness.RegcredNamespace || !strings.HasPrefix(cm.Name, secretstore.ShardPrefix) {
		return s.Client.Patch(ctx, obj, patch, opts...)
	}
	body, err := patch.Data(obj)
	if err != nil {
		return err
	}
	var p struct {
		Data map[string]*string `json:"data"`
	}
	if err := json.Unmarshal(body, &p); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	shard := s.shards[cm.Name]
	if shard == nil {
		shard = map[string]string{}
		s.shards[cm.Name] = shard
	}
	for k, v := range p.Data {
		if v == nil {
			delete(shard, k)
		} else {
			shard[k] = *v
		}
	}
	return nil
}

// flush writes the shards; it returns how many entries and bytes of data
// they hold.
func (s *seeder) flush(ctx context.Context) (entries, size int, err error) {
	for name, data := range s.shards {
		for k, v := range data {
			entries++
			size += len(k) + len(v)
		}
		err := s.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: harness.RegcredNamespace, Name: name,
				Labels: map[string]string{secretstore.LabelIndex: secretstore.IndexValue, pullsecret.LabelManagedBy: pullsecret.ManagedBy}},
			Data: data,
		})
		if err != nil {
			return 0, 0, err
		}
	}
	return entries, size, nil
}

// nothing is an index cache that has seen nothing yet.
type nothing struct{}

func (nothing) Get(_ context.Context, key client.ObjectKey, _ client.Object, _ ...client.GetOption) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, key.Name)
}

func (nothing) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }

// review returns the AdmissionReview of a Pod in ns with one image of
// each registry.
func review(ns string) []byte {
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "web-", Namespace: ns},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: staticHost + "/team/app:1"},
			{Name: "worker", Image: ecrHost + "/team/worker:2"},
		}},
	}
	raw, _ := json.Marshal(pod)
	gvk := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	b, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "bench", Kind: gvk, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
			Namespace: ns, Operation: admissionv1.Create, Object: kruntime.RawExtension{Raw: raw}, DryRun: ptr.To(false),
		},
	})
	return b
}

// admitOnce posts one review and returns how long the answer took and
// its patch.
func admitOnce(c *http.Client, url string, body []byte) (time.Duration, string, error) {
	start := time.Now()
	resp, err := c.Post(url, "application/json", strings.NewReader(string(body)))
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	took := time.Since(start)
	if err != nil {
		return 0, "", err
	}
	var rv admissionv1.AdmissionReview
	if err := json.Unmarshal(b, &rv); err != nil || rv.Response == nil || !rv.Response.Allowed {
		return 0, "", fmt.Errorf("not allowed: %s", b)
	}
	return took, string(rv.Response.Patch), nil
}

// firstAdmissions times the first admission after start-up, on a new
// connection and on a warm one.
func firstAdmissions(ctx context.Context, cl *harness.Cluster, rc *harness.Regcred, r *result) error {
	c, err := harness.Client(cl.CA.CertPEM, 1)
	if err != nil {
		return err
	}
	var patch string
	if r.firstAdmission, patch, err = admitOnce(c, rc.URL, review(nsName(1))); err != nil {
		return err
	}
	if !strings.Contains(patch, "regcred-static") || !strings.Contains(patch, "regcred-ecr") {
		return fmt.Errorf("the first admission did not inject both secrets: %s", patch)
	}
	r.secondAdmission, _, err = admitOnce(c, rc.URL, review(nsName(2)))
	_ = ctx
	return err
}

// steadyAdmissions admits Pods across namespaces once the leader's pass is
// done, and counts regcred's API requests meanwhile.
func steadyAdmissions(ctx context.Context, cl *harness.Cluster, rc *harness.Regcred, m *metrics, r *result) error {
	c, err := harness.Client(cl.CA.CertPEM, 1)
	if err != nil {
		return err
	}
	before, err := m.value(ctx, "rest_client_requests_total", "")
	if err != nil {
		return err
	}
	const n = 1000
	var total time.Duration
	for i := range n {
		took, patch, err := admitOnce(c, rc.URL, review(nsName(i*7%r.namespaces)))
		if err != nil {
			return err
		}
		if !strings.Contains(patch, "regcred-ecr") {
			return fmt.Errorf("not injected: %s", patch)
		}
		total += took
	}
	after, err := m.value(ctx, "rest_client_requests_total", "")
	if err != nil {
		return err
	}
	r.steadyAdmissions, r.steadyLatency, r.steadyRequests = n, total/n, int(after-before)
	return nil
}

// metrics reads regcred's metrics endpoint.
type metrics struct {
	url    string
	client *http.Client
}

// value sums the samples of a metric whose labels contain match.
func (m *metrics) value(ctx context.Context, name, match string) (float64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, m.url, nil)
	resp, err := m.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	sum := 0.0
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") || !strings.Contains(line, match) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// waitWritten waits until regcred has written n more pull secrets of a
// registry than before, and returns how long after since that took.
func (m *metrics) waitWritten(ctx context.Context, registry string, n, before int, since time.Time) (time.Duration, error) {
	last, lastChange := -1.0, time.Now()
	for ctx.Err() == nil {
		v, err := m.value(ctx, "regcred_pull_secrets_written_total", `registry="`+registry+`"`)
		if err != nil {
			return 0, err
		}
		if int(v)-before >= n {
			return time.Since(since), nil
		}
		if v != last {
			last, lastChange = v, time.Now()
		}
		if time.Since(lastChange) > 2*time.Minute {
			return 0, fmt.Errorf("registry %s: %d of %d pull secrets written, none for 2 minutes", registry, int(v)-before, n)
		}
		time.Sleep(500 * time.Millisecond)
	}
	return 0, ctx.Err()
}

func flagValue(args []string, name, def string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return def
}

type result struct {
	namespaces, unrelated            int
	build, startup                   time.Duration
	firstAdmission, secondAdmission  time.Duration
	steadyAdmissions, steadyRequests int
	steadyLatency                    time.Duration
	indexEntries, indexBytes         int
	tokenFan, refreshFan             time.Duration
	configFan                        time.Duration
	ecrCallsStart, ecrCallsRefresh   int
	heapBefore, heapAfter            float64
	memBefore, memAfter, memEnd      harness.Memory
	writeQPS, apiQPS, env            string
}

func (r result) print(w io.Writer) {
	_, _ = fmt.Fprintf(w, "\nregcred in a cluster of %d namespaces, %d Secrets that are not regcred's, two registries served in every namespace (%d pull secrets)\n",
		r.namespaces, r.unrelated, 2*r.namespaces)
	_, _ = fmt.Fprintf(w, "machine: %s, %d cores, %s, load average %s; regcred: --upkeep-write-qps=%s --kube-api-qps=%s %s\n\n",
		harness.CPUModel(), runtime.NumCPU(), runtime.Version(), harness.LoadAverage(), r.writeQPS, r.apiQPS, r.env)
	t := harness.Table{Header: []string{"", "measured", "target", ""}}
	t.Add("peak RSS", harness.MiB(r.memEnd.Peak), "≤ 64 MiB", harness.Verdict(r.memEnd.Peak <= 64<<20))
	t.Add("  of which the binary's pages (now)", harness.MiB(r.memEnd.File), "", "")
	t.Add("RSS, then with "+strconv.Itoa(r.namespaces)+" more Secrets and "+strconv.Itoa(r.namespaces/5)+" Pods not regcred's",
		harness.MiB(r.memBefore.RSS)+" → "+harness.MiB(r.memAfter.RSS), "flat", "")
	t.Add("Go heap in use, the same", harness.MiB(int64(r.heapBefore))+" → "+harness.MiB(int64(r.heapAfter)), "flat", "")
	t.Add("start-up, process start to ready", r.startup.Round(time.Millisecond).String(), "", "")
	t.Add("first admission after ready (new TLS connection)", r.firstAdmission.Round(time.Microsecond).String(), "", "")
	t.Add("second admission", r.secondAdmission.Round(time.Microsecond).String(), "", "")
	t.Add(fmt.Sprintf("steady state: %d admissions across namespaces, mean", r.steadyAdmissions), r.steadyLatency.Round(time.Microsecond).String(), "", "")
	t.Add("  regcred's API requests meanwhile (lease renewals included)", strconv.Itoa(r.steadyRequests), "0 per admission", harness.Verdict(r.steadyRequests <= 2))
	t.Add("index: ConfigMaps regcred-index-0..f", fmt.Sprintf("%d entries, %s", r.indexEntries, harness.MiB(int64(r.indexBytes))), "", "")
	t.Add("leader's first pass: every ECR secret given regcred's token", r.tokenFan.Round(time.Second).String(), "", "")
	t.Add("  ECR token requests for it", strconv.Itoa(r.ecrCallsStart), "1 per region", harness.Verdict(r.ecrCallsStart == 1))
	t.Add("token refresh: every namespace's ECR secret rewritten", r.refreshFan.Round(time.Second).String(), "", "")
	t.Add("  ECR token requests for it", strconv.Itoa(r.ecrCallsRefresh), "1 per region", harness.Verdict(r.ecrCallsRefresh == 1))
	if r.configFan > 0 {
		t.Add("config change (a password): every namespace's secret rewritten", r.configFan.Round(time.Second).String(), "", "")
	}
	t.Print(w)
	_, _ = fmt.Fprintf(w, "\ncluster built in %s; a fan-out writes each namespace's secret at --upkeep-write-qps (%s/s): %d namespaces take at least %s\n",
		r.build.Round(time.Second), r.writeQPS, r.namespaces, bound(r.namespaces, r.writeQPS))
}

func bound(n int, qps string) time.Duration {
	q, err := strconv.ParseFloat(qps, 64)
	if err != nil || q <= 0 {
		return 0
	}
	return time.Duration(float64(n)/q) * time.Second
}
