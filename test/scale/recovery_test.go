// Package scale measures regcred at cluster scale on a real API server:
// the heap of recovery's Pod cache with 10,000 Pods, against a cache of
// whole Pods in the same run (make bench-recovery).
package scale

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	crcache "sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/regcred/regcred/pkg/recovery"
	"github.com/regcred/regcred/test/testbed"
)

// pods is how many Pods the measurement makes (REGCRED_SCALE_PODS
// overrides it).
func pods(b *testing.B) int {
	if v := os.Getenv("REGCRED_SCALE_PODS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("REGCRED_SCALE_PODS=%q: want a positive number", v)
		}
		return n
	}
	return 10_000
}

// BenchmarkRecoveryCache fills a real API server with Pods as Deployments
// make them and kubelets report them (one in ten stuck in
// ImagePullBackOff), then measures the live heap each cache holds once
// synced: recovery's (Pods stripped to what it needs), and as baselines
// whole Pods (client-go's informer as is), and whole Pods without their
// managedFields (what regcred's controller-runtime cache keeps of other
// objects). The caches list and watch through the same protobuf client.
func BenchmarkRecoveryCache(b *testing.B) {
	n := pods(b)
	cp, err := testbed.StartControlPlane(testbed.ControlPlaneOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cp.Stop)
	cfg := rest.CopyConfig(cp.Config)
	cfg.QPS, cfg.Burst = 2000, 4000
	cfg.ContentType = apiruntime.ContentTypeProtobuf
	cfg.AcceptContentTypes = apiruntime.ContentTypeProtobuf + "," + apiruntime.ContentTypeJSON
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := fill(b.Context(), cs, n); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d Pods created and their status reported in %s", n, time.Since(start).Round(time.Second))

	caches := []struct {
		name string
		make func() cache.SharedIndexInformer
	}{
		{"recovery (stripped)", func() cache.SharedIndexInformer { return recovery.NewPodInformer(cs) }},
		{"whole Pods", func() cache.SharedIndexInformer { return recovery.NewFullPodInformer(cs) }},
		{"whole Pods without managedFields", func() cache.SharedIndexInformer {
			inf := recovery.NewFullPodInformer(cs)
			_ = inf.SetTransform(crcache.TransformStripManagedFields())
			return inf
		}},
	}
	heap := make([]float64, len(caches))
	for b.Loop() {
		for i, c := range caches {
			bytes, count := measure(b, c.make)
			if count != n {
				b.Fatalf("%s cached %d Pods, want %d", c.name, count, n)
			}
			heap[i] = float64(bytes)
		}
	}
	for i, c := range caches {
		b.Logf("%-34s %8.1f MiB  %6.0f bytes per Pod", c.name, heap[i]/(1<<20), heap[i]/float64(n))
	}
	b.Logf("whole Pods take %.1f times the heap of recovery's cache; without managedFields, %.1f times", heap[1]/heap[0], heap[2]/heap[0])
	b.ReportMetric(heap[0]/float64(n), "B/pod-stripped")
	b.ReportMetric(heap[1]/float64(n), "B/pod-whole")
	b.ReportMetric(heap[2]/float64(n), "B/pod-whole-no-managedFields")
	b.ReportMetric(heap[1]/heap[0], "x-whole/stripped")
	if heap[0] >= heap[2] {
		b.Errorf("recovery's cache (%.0f bytes) is not smaller than whole Pods without managedFields (%.0f bytes)", heap[0], heap[2])
	}
}

// measure starts an informer, waits until it has synced, and returns the
// growth of the live heap it caused and the number of objects it holds.
func measure(b *testing.B, newInformer func() cache.SharedIndexInformer) (uint64, int) {
	b.Helper()
	before := liveHeap()
	inf := newInformer()
	ctx, cancel := context.WithCancel(b.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		inf.RunWithContext(ctx)
	}()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		b.Fatal("the cache did not sync")
	}
	after := liveHeap()
	count := len(inf.GetStore().ListKeys())
	cancel()
	<-done
	runtime.KeepAlive(inf)
	if after < before {
		return 0, count
	}
	return after - before, count
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// fill creates n Pods in namespaces of 100, with 16 writers.
func fill(ctx context.Context, cs kubernetes.Interface, n int) error {
	namespaces := (n + 99) / 100
	for i := range namespaces {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("team-%03d", i)}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				p := deploymentPod(i)
				created, err := cs.CoreV1().Pods(p.Namespace).Create(ctx, p, metav1.CreateOptions{})
				if err == nil {
					created.Status = status(i)
					_, err = cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
				}
				if err != nil {
					errs <- fmt.Errorf("pod %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// deploymentPod is a Pod as a Deployment makes it, admitted as a cluster
// admits it (a ServiceAccount token volume, default tolerations), bound to
// a node.
func deploymentPod(i int) *corev1.Pod {
	ns := fmt.Sprintf("team-%03d", i/100)
	app := fmt.Sprintf("svc-%02d", i%100/10)
	hash := "5d8f7c9b4"
	env := make([]corev1.EnvVar, 0, 12)
	for k := range 10 {
		env = append(env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", k), Value: fmt.Sprintf("value-%d-of-%s", k, app)})
	}
	env = append(env,
		corev1.EnvVar{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		corev1.EnvVar{Name: "DB_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "password"}}})
	mounts := []corev1.VolumeMount{
		{Name: "config", MountPath: "/etc/app", ReadOnly: true},
		{Name: "kube-api-access-x7k2p", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
	}
	probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http"), Scheme: corev1.URISchemeHTTP}},
		PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%s-%05d", app, hash, i), Namespace: ns,
			Labels:      map[string]string{"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "shop", "pod-template-hash": hash, "team": ns},
			Annotations: map[string]string{"kubectl.kubernetes.io/restartedAt": "2030-01-01T00:00:00Z", "prometheus.io/scrape": "true", "prometheus.io/port": "8080"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: app + "-" + hash,
				UID: types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i/10)), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{
				{
					Name: "app", Image: fmt.Sprintf("registry.example.com/shop/%s:1.%d.0", app, i%7),
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
					Env:   env,
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
						Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
					},
					VolumeMounts: mounts, LivenessProbe: probe, ReadinessProbe: probe,
					TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
					ImagePullPolicy: corev1.PullIfNotPresent,
				},
				{
					Name: "proxy", Image: "docker.io/envoyproxy/envoy:v1.31.0",
					Args:                   []string{"--config-path", "/etc/envoy/envoy.yaml", "--log-level", "warn"},
					VolumeMounts:           mounts[1:],
					Resources:              corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")}},
					TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
					ImagePullPolicy: corev1.PullIfNotPresent,
				},
			},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: app}, DefaultMode: ptr.To[int32](420)}}},
				{Name: "kube-api-access-x7k2p", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr.To[int32](420), Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
				}}}},
			},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred-shop"}},
			NodeName:         fmt.Sprintf("node-%03d", i%250),
			Tolerations: []corev1.Toleration{
				{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
				{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](300)},
			},
			SecurityContext:    &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			ServiceAccountName: "default",
		},
	}
}

// status is what a kubelet reports: Running, or (one in ten) Pending with
// the app's image pull failing.
func status(i int) corev1.PodStatus {
	t := metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	running := func(name, image string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, Image: image, ImageID: image + "@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			ContainerID: fmt.Sprintf("containerd://%064d", i), Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: t}}}
	}
	app := running("app", fmt.Sprintf("registry.example.com/shop/svc-%02d:1.%d.0", i%100/10, i%7))
	phase, ready := corev1.PodRunning, corev1.ConditionTrue
	if i%10 == 0 {
		phase, ready = corev1.PodPending, corev1.ConditionFalse
		app = corev1.ContainerStatus{Name: "app", Image: app.Image, State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: recovery.ReasonImagePullBackOff, Message: `Back-off pulling image "` + app.Image + `": ErrImagePull: failed to authorize: 401 Unauthorized`}}}
	}
	cond := func(c corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
		return corev1.PodCondition{Type: c, Status: s, LastTransitionTime: t}
	}
	ip := fmt.Sprintf("10.%d.%d.%d", i/65536%256, i/256%256, i%256)
	return corev1.PodStatus{
		Phase: phase, QOSClass: corev1.PodQOSBurstable, StartTime: &t,
		HostIP: "192.168.0.10", HostIPs: []corev1.HostIP{{IP: "192.168.0.10"}}, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
		Conditions: []corev1.PodCondition{
			cond("PodReadyToStartContainers", corev1.ConditionTrue), cond(corev1.PodInitialized, corev1.ConditionTrue),
			cond(corev1.PodReady, ready), cond(corev1.ContainersReady, ready), cond(corev1.PodScheduled, corev1.ConditionTrue),
		},
		ContainerStatuses: []corev1.ContainerStatus{app, running("proxy", "docker.io/envoyproxy/envoy:v1.31.0")},
	}
}
