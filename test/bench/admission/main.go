// Command admission is make bench-admission: regcred, a minimal net/http
// webhook (test/bench/floor) and controller-runtime's admission webhook
// with a handler that does nothing (test/bench/crwebhook) side by side on
// the test bed's API server, first with HTTPS keep-alive load straight to
// each, then with Pod creations through the API server with each
// registered in turn, and the ratios as a table. Rounds alternate which
// goes first; the table gives medians.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/regcred/regcred/test/bench/harness"
	"github.com/regcred/regcred/test/testbed"
)

type options struct {
	regcred, floor, crwebhook string
	rounds                    int
	duration                  time.Duration
	pods                      int
	clients                   []int
	env                       []string
	work                      string
	// apiServer runs the rounds through the API server too.
	apiServer bool
}

func main() {
	var o options
	clients := "1,8"
	env := ""
	flag.StringVar(&o.regcred, "regcred", "bin/regcred", "regcred's binary.")
	flag.StringVar(&o.floor, "floor", "bin/floor", "The floor webhook's binary (test/bench/floor).")
	flag.StringVar(&o.crwebhook, "controller-runtime", "bin/crwebhook", "controller-runtime's webhook's binary (test/bench/crwebhook).")
	flag.IntVar(&o.rounds, "rounds", 3, "Rounds; each measures every webhook at every concurrency.")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "Length of each direct load run.")
	flag.IntVar(&o.pods, "pods", 300, "Pods created through the API server per run.")
	flag.StringVar(&clients, "clients", clients, "Concurrent clients, comma-separated.")
	flag.StringVar(&env, "regcred-env", env, "Environment for regcred, comma-separated (e.g. GOMEMLIMIT=32MiB).")
	flag.StringVar(&o.work, "work", "", "Directory for logs and certificates (default: a new temporary one).")
	flag.BoolVar(&o.apiServer, "api-server", true, "Also create Pods through the API server with each webhook registered.")
	flag.Parse()
	for _, c := range strings.Split(clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench-admission: --clients %q\n", clients)
			os.Exit(2)
		}
		o.clients = append(o.clients, n)
	}
	o.env = harness.List(env)
	harness.Main("bench-admission", func(ctx context.Context) error { return run(ctx, o) })
}

// say reports progress on stderr; the table goes to stdout.
var say = harness.Sayer("bench-admission")

const (
	podNamespace = "bench"
	privateImage = "registry.bench.example:5000/team/app:1.4.2"
	publicImage  = "nginx:1.27"
	config       = `apiVersion: regcred.io/v1alpha1
kind: RegistryConfig
registries:
- name: private
  type: other
  url: registry.bench.example:5000
  username: {value: bench}
  password: {secretKeyRef: {name: registry-creds, key: password}}
`
)

// webhook is one of the webhooks measured.
type webhook struct {
	name string
	url  string
	proc *harness.Process
	// bin is the webhook's binary.
	bin string
	// applied tells, from a Pod the API server returns, that this webhook
	// mutated it.
	applied func(*corev1.Pod) bool
}

func run(ctx context.Context, o options) error {
	if o.work == "" {
		dir, err := os.MkdirTemp("", "regcred-bench-")
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
	say("control plane up in %s", time.Since(start).Round(time.Millisecond))
	if err := cl.SetupRegcred(ctx, config, map[string]string{"password": "bench-password"}); err != nil {
		return err
	}
	if err := cl.CreateNamespace(ctx, podNamespace, nil); err != nil {
		return err
	}

	r, err := cl.StartRegcred("regcred", o.regcred, nil, o.env)
	if err != nil {
		return err
	}
	defer r.Stop()
	floorPort, err := testbed.FreePort()
	if err != nil {
		return err
	}
	floor, err := harness.Start("floor", o.floor, []string{
		fmt.Sprintf("--addr=127.0.0.1:%d", floorPort),
		"--cert=" + filepath.Join(cl.CertDir, "tls.crt"), "--key=" + filepath.Join(cl.CertDir, "tls.key"),
	}, nil, filepath.Join(o.work, "floor.log"))
	if err != nil {
		return err
	}
	defer floor.Stop()
	var crPorts [2]int
	for i := range crPorts {
		if crPorts[i], err = testbed.FreePort(); err != nil {
			return err
		}
	}
	cr, err := harness.Start("crwebhook", o.crwebhook, []string{
		"--kubeconfig=" + cl.CP.Kubeconfig, fmt.Sprintf("--port=%d", crPorts[0]), "--cert-dir=" + cl.CertDir,
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", crPorts[1]),
	}, nil, filepath.Join(o.work, "crwebhook.log"))
	if err != nil {
		return err
	}
	defer cr.Stop()
	probe, err := harness.Client(cl.CA.CertPEM, 1)
	if err != nil {
		return err
	}
	ready, err := harness.WaitReady(ctx, probe, r.ReadyURL, r.Process, 2*time.Minute)
	if err != nil {
		return err
	}
	say("regcred ready in %s", ready.Round(time.Millisecond))
	floorURL := fmt.Sprintf("https://127.0.0.1:%d/mutate", floorPort)
	if _, err := harness.WaitReady(ctx, probe, fmt.Sprintf("https://127.0.0.1:%d/healthz", floorPort), floor, time.Minute); err != nil {
		return err
	}
	if _, err := harness.WaitReady(ctx, probe, fmt.Sprintf("http://127.0.0.1:%d/readyz", crPorts[1]), cr, time.Minute); err != nil {
		return err
	}
	hooks := []webhook{
		{name: "floor", url: floorURL, proc: floor, bin: o.floor, applied: func(p *corev1.Pod) bool {
			return len(p.Spec.ImagePullSecrets) > 0 && p.Spec.ImagePullSecrets[0].Name == "floor"
		}},
		{name: "crwebhook", url: fmt.Sprintf("https://127.0.0.1:%d/mutate", crPorts[0]), proc: cr, bin: o.crwebhook, applied: func(p *corev1.Pod) bool {
			return len(p.Spec.ImagePullSecrets) > 0 && p.Spec.ImagePullSecrets[0].Name == "crwebhook"
		}},
		{name: "regcred", url: r.URL, proc: r.Process, bin: o.regcred, applied: func(p *corev1.Pod) bool {
			return p.Annotations["regcred.io/injected"] != ""
		}},
	}

	// Each webhook's RSS once ready, before any load, and the size of its
	// binary: how much of the peak each starts with, and how much of its
	// binary the kernel has mapped in.
	atReady := map[string]memory{}
	for _, h := range hooks {
		m, err := h.proc.Memory()
		if err != nil {
			return err
		}
		fi, err := os.Stat(h.bin)
		if err != nil {
			return err
		}
		atReady[h.name] = memory{ready: m.RSS, binary: fi.Size()}
	}

	pod := benchPod()
	body, err := reviewOf(ctx, cl, pod)
	if err != nil {
		return err
	}
	say("the review: %d bytes, a Pod with one private and one public image", len(body))

	direct, err := directRounds(ctx, o, cl, hooks, body)
	if err != nil {
		return err
	}
	through := map[string]map[int][]float64{}
	if o.apiServer {
		if through, err = apiServerRounds(ctx, o, cl, hooks, pod); err != nil {
			return err
		}
	}
	mem := map[string]memory{}
	for _, h := range hooks {
		m := atReady[h.name]
		if m.Memory, err = h.proc.Memory(); err != nil {
			return err
		}
		mem[h.name] = m
	}
	report(o, len(body), direct, through, mem)
	say("done in %s", time.Since(start).Round(time.Second))
	return nil
}

// benchPod is the Pod measured: one private image, one public, what a
// small Deployment's Pod holds.
func benchPod() *corev1.Pod {
	res := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "web-7d4b9c8f6d-",
			Labels:       map[string]string{"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web-prod", "pod-template-hash": "7d4b9c8f6d"},
			Annotations:  map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z", "prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "app", Image: privateImage,
				Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env:            []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "PORT", Value: "8080"}, {Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
				Resources:      res,
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstrPort("http")}}},
				VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/app"}},
			}, {
				Name: "proxy", Image: publicImage,
				Ports:     []corev1.ContainerPort{{Name: "proxy", ContainerPort: 80}},
				Resources: res,
			}},
			Volumes:                       []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}}}},
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			SecurityContext:               &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)},
		},
	}
}

// reviewOf returns the AdmissionReview the API server sends for pod:
// the Pod as the API server has it at admission (defaults set, managed
// fields), got with a dry run, in the review's envelope.
func reviewOf(ctx context.Context, cl *harness.Cluster, pod *corev1.Pod) ([]byte, error) {
	created, err := cl.CS.CoreV1().Pods(podNamespace).Create(ctx, pod.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return nil, err
	}
	created.Name, created.UID, created.CreationTimestamp, created.ResourceVersion = "", "", metav1.Time{}, ""
	raw, err := json.Marshal(created)
	if err != nil {
		return nil, err
	}
	gvk := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	gvr := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID("705ab4f5-6393-11e8-b7cc-42010a800002"), Kind: gvk, Resource: gvr, RequestKind: &gvk, RequestResource: &gvr,
			Namespace: podNamespace, Operation: admissionv1.Create,
			UserInfo: authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller", UID: "b1e2", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"}},
			Object:   runtimeRaw(raw),
			Options:  runtimeRaw([]byte(`{"kind":"CreateOptions","apiVersion":"meta.k8s.io/v1"}`)),
			DryRun:   ptr.To(false),
		},
	})
}

// directResult is one direct run.
type directResult struct {
	perSecond float64
	// cpu is the webhook process's processor time per request.
	cpu time.Duration
}

// directRounds loads each webhook straight over HTTPS, rounds × clients,
// alternating which goes first.
func directRounds(ctx context.Context, o options, cl *harness.Cluster, hooks []webhook, body []byte) (map[string]map[int][]directResult, error) {
	out := map[string]map[int][]directResult{}
	for _, h := range hooks {
		out[h.name] = map[int][]directResult{}
	}
	// Warm up: regcred makes the namespace's pull secret on the first
	// review; then every review is steady state.
	say("warming up the webhooks")
	for _, h := range hooks {
		c, err := harness.Client(cl.CA.CertPEM, 8)
		if err != nil {
			return nil, err
		}
		if res := harness.Direct(ctx, c, h.url, body, 8, 3*time.Second); res.Errors > 0 {
			return nil, fmt.Errorf("%s: %d errors, first: %w", h.name, res.Errors, res.FirstError)
		}
	}
	time.Sleep(time.Second)
	for round := range o.rounds {
		for _, conc := range o.clients {
			for i := range hooks {
				h := hooks[(i+round)%len(hooks)]
				c, err := harness.Client(cl.CA.CertPEM, conc)
				if err != nil {
					return nil, err
				}
				before, err := h.proc.CPU()
				if err != nil {
					return nil, err
				}
				res := harness.Direct(ctx, c, h.url, body, conc, o.duration)
				after, err := h.proc.CPU()
				if err != nil {
					return nil, err
				}
				if res.Errors > 0 || res.Requests == 0 {
					return nil, fmt.Errorf("%s: %d errors, first: %w", h.name, res.Errors, res.FirstError)
				}
				d := directResult{perSecond: res.PerSecond(), cpu: (after - before) / time.Duration(res.Requests)}
				out[h.name][conc] = append(out[h.name][conc], d)
				say("round %d, %d client(s), direct, %-9s %8.0f req/s, %.3f ms CPU/request", round+1, conc, h.name, d.perSecond, ms(d.cpu))
			}
		}
	}
	return out, nil
}

// registration is what the API server calls: none, or a webhook.
const registration = "regcred-bench"

// apiServerRounds creates Pods through the API server with no webhook,
// the floor, then regcred registered, rounds × clients, alternating the
// order.
func apiServerRounds(ctx context.Context, o options, cl *harness.Cluster, hooks []webhook, pod *corev1.Pod) (map[string]map[int][]float64, error) {
	targets := append([]webhook{{name: "none", applied: func(p *corev1.Pod) bool {
		return len(p.Spec.ImagePullSecrets) == 0 && p.Annotations["regcred.io/injected"] == ""
	}}}, hooks...)
	out := map[string]map[int][]float64{}
	for _, t := range targets {
		out[t.name] = map[int][]float64{}
	}
	for round := range o.rounds {
		for _, conc := range o.clients {
			for i := range targets {
				t := targets[(i+round)%len(targets)]
				if err := register(ctx, cl, t); err != nil {
					return nil, err
				}
				// The API server's connections to the webhook, warm.
				if res := harness.CreatePods(ctx, cl.CS, podNamespace, pod, 20, conc); res.Errors > 0 {
					return nil, fmt.Errorf("%s: %w", t.name, res.FirstError)
				}
				res := harness.CreatePods(ctx, cl.CS, podNamespace, pod, o.pods, conc)
				if res.Errors > 0 {
					return nil, fmt.Errorf("%s: %d errors, first: %w", t.name, res.Errors, res.FirstError)
				}
				out[t.name][conc] = append(out[t.name][conc], res.PerSecond())
				say("round %d, %d client(s), through the API server, webhook %-9s %6.1f Pods/s", round+1, conc, t.name, res.PerSecond())
			}
		}
	}
	return out, register(ctx, cl, targets[0])
}

// register makes the API server call t (none: no webhook), registered as
// the Helm chart registers regcred, and waits until it does.
func register(ctx context.Context, cl *harness.Cluster, t webhook) error {
	err := cl.CS.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx, registration, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if t.url != "" {
		cfg := testbed.WebhookConfiguration(t.url, cl.CA.CertPEM, harness.RegcredNamespace)
		cfg.Name = registration
		if _, err := cl.CS.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		p, err := cl.CS.CoreV1().Pods(podNamespace).Create(ctx, benchPod(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil {
			return err
		}
		if t.applied(p) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("the API server does not call " + t.name)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// memory is a webhook's memory after the load, with its RSS when it was
// ready and the size of its binary.
type memory struct {
	harness.Memory
	ready, binary int64
}

func report(o options, bodySize int, direct map[string]map[int][]directResult, through map[string]map[int][]float64, mem map[string]memory) {
	fmt.Printf("\nregcred against a minimal net/http webhook (floor: test/bench/floor) and controller-runtime's webhook\n")
	fmt.Printf("with a handler that does nothing (c-r: test/bench/crwebhook), side by side on one machine:\n")
	fmt.Printf("%d rounds, medians; direct: %s of HTTPS keep-alive load per run, a %d-byte AdmissionReview; through the API server: %d Pods per run\n",
		o.rounds, o.duration, bodySize, o.pods)
	fmt.Printf("machine: %s, %d cores, %s, load average %s\n\n", harness.CPUModel(), runtime.NumCPU(), runtime.Version(), harness.LoadAverage())
	t := harness.Table{Header: []string{"", "clients", "floor", "c-r", "regcred", "c-r/floor", "regcred/floor", "target", ""}}
	row := func(what string, conc int, format string, f, c, r float64, target string, ok bool) {
		t.Add(what, strconv.Itoa(conc), fmt.Sprintf(format, f), fmt.Sprintf(format, c), fmt.Sprintf(format, r),
			fmt.Sprintf("%.2f", c/f), fmt.Sprintf("%.2f", r/f), target, harness.Verdict(ok))
	}
	for _, conc := range o.clients {
		f, c, r := medianRate(direct["floor"][conc]), medianRate(direct["crwebhook"][conc]), medianRate(direct["regcred"][conc])
		row("direct, requests/s", conc, "%.0f", f, c, r, "≥ 0.80", r/f >= 0.8)
	}
	for _, conc := range o.clients {
		f, c, r := medianCPU(direct["floor"][conc]), medianCPU(direct["crwebhook"][conc]), medianCPU(direct["regcred"][conc])
		row("direct, server CPU ms/request", conc, "%.3f", f, c, r, "≤ 0.150 ms", r <= 0.15)
	}
	for _, conc := range o.clients {
		if !o.apiServer {
			break
		}
		f, c, r := harness.Median(through["floor"][conc]), harness.Median(through["crwebhook"][conc]), harness.Median(through["regcred"][conc])
		row("through the API server, Pods/s", conc, "%.1f", f, c, r, "≥ 0.95", r/f >= 0.95)
	}
	t.Add("peak RSS", "", harness.MiB(mem["floor"].Peak), harness.MiB(mem["crwebhook"].Peak), harness.MiB(mem["regcred"].Peak), "", "", "≤ 40 MiB", harness.Verdict(mem["regcred"].Peak <= 40<<20))
	t.Add("  of which the binary's pages", "", harness.MiB(mem["floor"].File), harness.MiB(mem["crwebhook"].File), harness.MiB(mem["regcred"].File), "", "", "", "")
	t.Add("  the binary's size", "", harness.MiB(mem["floor"].binary), harness.MiB(mem["crwebhook"].binary), harness.MiB(mem["regcred"].binary), "", "", "", "")
	t.Add("RSS when ready, before any load", "", harness.MiB(mem["floor"].ready), harness.MiB(mem["crwebhook"].ready), harness.MiB(mem["regcred"].ready), "", "", "", "")
	t.Print(os.Stdout)
	fmt.Println()
	if !o.apiServer {
		return
	}
	n := harness.Table{Header: []string{"Pods/s through the API server, no webhook", "clients", "none", "floor/none", "c-r/none", "regcred/none"}}
	for _, conc := range o.clients {
		none := harness.Median(through["none"][conc])
		n.Add("", strconv.Itoa(conc), fmt.Sprintf("%.1f", none), fmt.Sprintf("%.2f", harness.Median(through["floor"][conc])/none),
			fmt.Sprintf("%.2f", harness.Median(through["crwebhook"][conc])/none), fmt.Sprintf("%.2f", harness.Median(through["regcred"][conc])/none))
	}
	n.Print(os.Stdout)
}

func medianRate(rs []directResult) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = r.perSecond
	}
	return harness.Median(xs)
}

func medianCPU(rs []directResult) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = ms(r.cpu)
	}
	return harness.Median(xs)
}

func intstrPort(name string) intstr.IntOrString { return intstr.FromString(name) }

func runtimeRaw(b []byte) kruntime.RawExtension { return kruntime.RawExtension{Raw: b} }
