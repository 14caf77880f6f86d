package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/regcred/regcred/pkg/certgen"
	"github.com/regcred/regcred/pkg/nodeagent"
	"github.com/regcred/regcred/pkg/nodetrust"
	"github.com/regcred/regcred/pkg/nodetrust/containerd"
	"github.com/regcred/regcred/test/testbed"
)

// The node-trust release: its own namespace and release name, so that
// nothing of it meets TestRegcredOnTheNode's.
const (
	trustNS      = "regcred-nt"
	trustRelease = "nodetrust"
	// trustPrefix is the release's resource prefix (the chart's fullname).
	trustPrefix = "nodetrust-regcred"
	// untrusted is what containerd says of a certificate it cannot verify.
	untrusted = "x509: certificate signed by unknown authority"
)

// A registry whose CA the node does not trust becomes pullable within
// seconds of being declared secure-with-ca with nodeTrust on, and stops
// being trusted when it is removed: regcred installed by helm from its
// own image, its node agent a DaemonSet Pod writing the real node's
// containerd config; the kubelet and containerd pull. With nodeTrust off
// nothing is deployed and nothing changes. The test bed's own hosts.toml
// files are never touched.
func TestNodeTrustOnTheNode(t *testing.T) {
	b := getBed(t)
	ctx := t.Context()

	// A second registry with a CA of its own, which the node was never
	// told of, on the node's address (containerd would skip verifying a
	// registry on loopback).
	privCA, err := certgen.NewCA("regcred-node-trust-test-ca", time.Hour)
	require.NoError(t, err)
	priv, err := testbed.StartRegistry(testbed.RegistryOptions{CA: privCA, Users: map[string]string{user: password}, IP: b.node.IP})
	require.NoError(t, err)
	t.Cleanup(priv.Stop)
	sleeper, err := testbed.GoProgram(ctx, testbed.WaitForTermSource)
	require.NoError(t, err)
	_, err = testbed.PushImage(ctx, priv, "team/private", "v1", user, password, testbed.Image{
		Files: []testbed.File{{Path: "/private", Content: sleeper}}, Entrypoint: []string{"/private", "running"},
	})
	require.NoError(t, err)
	privImage := priv.Host + "/team/private:v1"

	certsD := b.node.RegistryConfigDir()
	bedFiles := files(t, certsD)
	require.NotEmpty(t, bedFiles, "the test bed's own hosts.toml files (its registries)")
	t.Cleanup(func() {
		// Whatever happened, the test bed's own files are as they were.
		now := files(t, certsD)
		for p, c := range bedFiles {
			assert.Equal(t, c, now[p], "the test bed's %s", p)
		}
	})

	r := newTrustRelease(t, b, privCA)
	declared := map[string]any{
		"name": "private", "type": "other", "url": priv.Host,
		"connection": "secure-with-ca", "caCert": map[string]any{"secretKeyRef": map[string]any{"name": "private-registry", "key": "ca.crt"}},
		"username": map[string]any{"value": user}, "password": map[string]any{"secretKeyRef": map[string]any{"name": "private-registry", "key": "password"}},
	}
	// The bed's registry, trusted by the test bed's own hosts.toml: the
	// agent must leave that file alone and report a conflict.
	bedRegistry := map[string]any{
		"name": "bed", "type": "other", "url": b.reg.Host,
		"connection": "secure-with-ca", "caCert": map[string]any{"secretKeyRef": map[string]any{"name": "private-registry", "key": "bed-ca.crt"}},
		"username": map[string]any{"value": user}, "password": map[string]any{"secretKeyRef": map[string]any{"name": "private-registry", "key": "password"}},
	}
	ns := b.namespace(t)

	require.True(t, t.Run("nodeTrust off: nothing deployed, the registry declared secure-with-ca is still refused with x509", func(t *testing.T) {
		took := r.helm(t, "install", false, declared)
		t.Logf("helm install --wait, nodeTrust off, in %s", took.Round(time.Millisecond))
		ds, err := b.cs.AppsV1().DaemonSets("").List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		assert.Empty(t, ds.Items, "no DaemonSet")
		_, err = b.cs.CoreV1().ConfigMaps(trustNS).Get(ctx, trustPrefix+"-node-trust", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "nothing published: %v", err)
		_, err = b.cs.RbacV1().ClusterRoles().Get(ctx, trustPrefix+"-node-agent", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "no RBAC for an agent: %v", err)
		p := b.podOf(t, ns, "off", privImage, corev1.PullAlways)
		p = b.waitPod(t, ns, p.Name, 2*time.Minute, pullFailed)
		w := p.Status.ContainerStatuses[0].State.Waiting
		t.Logf("Pod %s (registry declared, secret %v injected): %s: %s", p.Name, testbed.PodSecretNames(p), w.Reason, w.Message)
		assert.Contains(t, w.Message, untrusted)
		assert.Equal(t, []string{"regcred-private"}, testbed.PodSecretNames(p), "regcred served the registry's credentials: only trust was missing")
		assert.Equal(t, bedFiles, files(t, certsD), "the node's files unchanged")
		assert.NotContains(t, b.nodeObject(t).Annotations, nodeagent.Annotation)
	}))

	require.True(t, t.Run("nodeTrust on, the registry not declared: the agent runs and changes nothing", func(t *testing.T) {
		took := r.helm(t, "upgrade", true)
		agent := r.agentPod(t)
		t.Logf("helm upgrade --wait, nodeTrust on: agent %s Ready on %s in %s", agent.Name, agent.Spec.NodeName, took.Round(time.Millisecond))
		st := r.applied(t, func(s nodeagent.Status) bool { return s.Published != "" })
		assert.Empty(t, st.Hosts)
		assert.Empty(t, st.Errors)
		assert.Equal(t, bedFiles, files(t, certsD), "nothing written, nothing removed")
		p := b.podOf(t, ns, "on-undeclared", privImage, corev1.PullAlways)
		p = b.waitPod(t, ns, p.Name, 2*time.Minute, pullFailed)
		assert.Contains(t, p.Status.ContainerStatuses[0].State.Waiting.Message, untrusted)
	}))

	hostDir := filepath.Join(certsD, priv.Host)
	require.True(t, t.Run("declared secure-with-ca: trusted within seconds, a new Pod pulls", func(t *testing.T) {
		changed := r.configChanged(t)
		appeared := watchFile(t.Context(), filepath.Join(hostDir, containerd.HostsFile), true)
		start := time.Now()
		took := r.helm(t, "upgrade", true, declared, bedRegistry)
		trustedAt := await(t, appeared, "the registry's hosts.toml on the node")
		podStart := time.Now()
		p := b.podOf(t, ns, "trusted", privImage, corev1.PullAlways)
		p = b.waitPod(t, ns, p.Name, time.Minute, running)
		configAt := await(t, changed, "regcred's config changed")
		// How soon is reported, not asserted: await fails the test if the
		// file is not there within watchFile's deadline, and waitPod if
		// the Pod does not run within its own.
		t.Logf("registry declared by helm upgrade (%s): the node trusts it %s after regcred's config changed; a new Pod created then was Running %s later (image pulled from the registry); %s in all",
			took.Round(time.Millisecond), trustedAt.Sub(configAt).Round(time.Millisecond), since(podStart), since(start))
		assert.Equal(t, []string{"regcred-private"}, testbed.PodSecretNames(p))

		got := files(t, certsD)
		hosts := got[filepath.Join(priv.Host, containerd.HostsFile)]
		assert.True(t, strings.HasPrefix(hosts, containerd.Marker), "marked as regcred's")
		assert.Contains(t, hosts, `server = "https://`+priv.Host+`"`)
		assert.Contains(t, hosts, `ca = "regcred-ca.crt"`)
		assert.Contains(t, got[filepath.Join(priv.Host, containerd.CAFile)], string(privCA.CertPEM))
		for p, c := range bedFiles {
			assert.Equal(t, c, got[p], "the test bed's %s untouched", p)
		}

		st := r.applied(t, func(s nodeagent.Status) bool { return len(s.Hosts) > 0 })
		assert.Equal(t, map[string]nodetrust.Mode{priv.Host: nodetrust.ModeCA}, st.Hosts)
		assert.Equal(t, map[string]string{b.reg.Host: "hosts.toml is not regcred's"}, st.Conflicts, "the test bed's own hosts.toml for the bed's registry")
		raw, _ := json.Marshal(st)
		t.Logf("Node %s annotation %s: %s", b.node.Name, nodeagent.Annotation, raw)
		m := r.agentMetrics(t)
		assert.Equal(t, 1.0, m[`regcred_node_agent_hosts{mode="ca"}`])
		assert.Equal(t, 1.0, m[`regcred_node_agent_conflicts`])
		statusErrors, ok := m[`regcred_node_agent_apply_errors_total{stage="status"}`]
		assert.True(t, ok, "the series is there (a missing one would read as 0)")
		assert.Equal(t, 0.0, statusErrors, "the policy let it annotate its own Node")
		t.Logf("agent metrics: hosts{ca}=%v conflicts=%v apply_errors{files}=%v", m[`regcred_node_agent_hosts{mode="ca"}`], m[`regcred_node_agent_conflicts`], m[`regcred_node_agent_apply_errors_total{stage="files"}`])
	}))

	t.Run("removed: the agent removes its files and a new Pod is refused again", func(t *testing.T) {
		changed := r.configChanged(t)
		gone := watchFile(t.Context(), hostDir, false)
		took := r.helm(t, "upgrade", true, bedRegistry)
		goneAt, configAt := await(t, gone, "the registry's files gone from the node"), await(t, changed, "regcred's config changed")
		t.Logf("registry removed by helm upgrade (%s): its files gone %s after regcred's config changed", took.Round(time.Millisecond), goneAt.Sub(configAt).Round(time.Millisecond))
		assert.Equal(t, bedFiles, files(t, certsD), "only what the agent wrote went")
		p := b.podOf(t, ns, "removed", privImage, corev1.PullAlways)
		p = b.waitPod(t, ns, p.Name, 2*time.Minute, pullFailed)
		w := p.Status.ContainerStatuses[0].State.Waiting
		t.Logf("new Pod %s (imagePullPolicy Always, the image cached on the node): %s: %s", p.Name, w.Reason, w.Message)
		assert.Contains(t, w.Message, untrusted)
		st := r.applied(t, func(s nodeagent.Status) bool { return len(s.Hosts) == 0 })
		assert.Equal(t, map[string]string{b.reg.Host: "hosts.toml is not regcred's"}, st.Conflicts)
		agent := r.agentPod(t)
		require.NotNil(t, agent)
		log, err := b.node.ContainerLog(agent, "node-agent")
		require.NoError(t, err)
		testbed.NoSecret(t, "the agent's log", log, password)
		assert.Contains(t, log, "Removed containerd's files of a registry host no registry needs")
		if rss, err := agentPeakRSS(); err == nil {
			t.Logf("the agent's peak RSS: %.1f MiB", float64(rss)/(1<<20))
		} else {
			t.Logf("the agent's peak RSS: %v", err)
		}
	})
}

// seen is when something a test waits for happened, or why it did not.
type seen struct {
	at  time.Time
	err error
}

// await returns when ch says it happened, and fails t if it did not, or
// if nothing came within a minute. The goroutines that send never touch t:
// one that outlived its test would panic the whole binary, and the node's
// cleanup would never run.
func await(t *testing.T, ch <-chan seen, what string) time.Time {
	t.Helper()
	select {
	case s := <-ch:
		require.NoError(t, s.err, what)
		return s.at
	case <-time.After(time.Minute):
		t.Fatalf("%s: not within a minute", what)
		return time.Time{}
	}
}

// configChanged watches the release's config ConfigMap and sends when it
// was next modified.
func (r *trustInstall) configChanged(t *testing.T) <-chan seen {
	t.Helper()
	w, err := r.b.cs.CoreV1().ConfigMaps(trustNS).Watch(t.Context(), metav1.ListOptions{
		FieldSelector: "metadata.name=" + trustPrefix + "-config", ResourceVersion: r.configVersion(t),
	})
	require.NoError(t, err)
	ch := make(chan seen, 1)
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			if ev.Type == watch.Modified {
				ch <- seen{at: time.Now()}
				return
			}
		}
		ch <- seen{err: errors.New("the watch of regcred's config ended before it changed")}
	}()
	return ch
}

func (r *trustInstall) configVersion(t *testing.T) string {
	t.Helper()
	cm, err := r.b.cs.CoreV1().ConfigMaps(trustNS).Get(t.Context(), trustPrefix+"-config", metav1.GetOptions{})
	require.NoError(t, err)
	return cm.ResourceVersion
}

// watchFile polls path every 10ms and sends when it exists (or, with
// present false, when it is gone), or an error after 30s or once ctx ends.
func watchFile(ctx context.Context, path string, present bool) <-chan seen {
	ch := make(chan seen, 1)
	go func() {
		deadline := time.Now().Add(30 * time.Second)
		for exists(path) != present {
			if err := ctx.Err(); err != nil {
				ch <- seen{err: err}
				return
			}
			if time.Now().After(deadline) {
				ch <- seen{err: fmt.Errorf("%s: still %s after 30s", path, map[bool]string{true: "missing", false: "there"}[present])}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		ch <- seen{at: time.Now()}
	}()
	return ch
}

// agentPeakRSS returns the peak resident memory of the node agent's
// process on this machine (the node's), from /proc.
func agentPeakRSS() (int64, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), "node-agent\x00--namespace="+trustNS) {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", p.Name(), "status"))
		if err != nil {
			return 0, err
		}
		for _, l := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no node agent process found")
}

// trustInstall is regcred installed by helm in its own namespace, with
// nodeTrust on or off.
type trustInstall struct {
	b     *bed
	helmc *testbed.Helm
	tag   string
}

// newTrustRelease builds regcred's image, pushes it to the bed's
// registry, and readies its namespace: its image's pull secret, the
// private registry's password and CA. It uninstalls the release after
// the test.
func newTrustRelease(t *testing.T, b *bed, ca *certgen.CA) *trustInstall {
	t.Helper()
	ctx := t.Context()
	r := &trustInstall{b: b}
	var err error
	r.helmc, err = testbed.NewHelm(b.cp.Kubeconfig)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, r.helmc.Close()) })
	start := time.Now()
	img, err := testbed.BuildRegcredImage(ctx)
	require.NoError(t, err)
	r.tag = img.Metadata.Version
	_, err = img.Push(ctx, b.reg, imageRepo, r.tag, user, password)
	require.NoError(t, err)
	t.Logf("regcred %s built and pushed in %s", r.tag, since(start))

	// The level the agent's hostPath needs, as the chart's notes say.
	_, err = b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: trustNS, Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"},
	}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		if _, err := r.helmc.Run(ctx, "status", trustRelease, "-n", trustNS); err == nil {
			_, err := r.helmc.Run(ctx, "uninstall", trustRelease, "-n", trustNS, "--wait", "--timeout", "2m")
			assert.NoError(t, err)
		}
		_ = b.cs.CoreV1().Namespaces().Delete(ctx, trustNS, metav1.DeleteOptions{})
	})
	b.pullSecret(t, trustNS, imagePull, password)
	_, err = b.cs.CoreV1().Secrets(trustNS).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "private-registry"},
		StringData: map[string]string{"password": password, "ca.crt": string(ca.CertPEM), "bed-ca.crt": string(b.ca.CertPEM)},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return r
}

// helm installs or upgrades the release with these registries, nodeTrust
// on or off, and waits (--wait: regcred's Deployment and the agent's
// DaemonSet ready). It returns how long helm took.
func (r *trustInstall) helm(t *testing.T, verb string, nodeTrust bool, registries ...map[string]any) time.Duration {
	t.Helper()
	v := testbed.NodeValues(r.b.node, r.b.reg.Host+"/"+imageRepo, r.tag, imagePull)
	regs := []any{}
	for _, reg := range registries {
		regs = append(regs, reg)
	}
	v["config"] = map[string]any{"registries": regs}
	v["replicaCount"] = 1
	v["clusterName"] = "node-test"
	// The registries listen where regcred's Pod cannot log in to them.
	v["checkInterval"] = "0"
	v["nodeTrust"] = map[string]any{
		"enabled": nodeTrust,
		// containerd's config_path on this node.
		"hostPath": r.b.node.RegistryConfigDir(),
		"extraEnv": v["extraEnv"],
	}
	file, err := r.helmc.ValuesFile(v)
	require.NoError(t, err)
	start := time.Now()
	_, err = r.helmc.Run(t.Context(), verb, trustRelease, testbed.ChartDir(), "-n", trustNS, "--values", file, "--wait", "--timeout", "4m")
	require.NoError(t, err, "Pods of the release: %s", r.describe(t))
	return time.Since(start)
}

// agentPod returns the node agent's Pod on the node, or nil.
func (r *trustInstall) agentPod(t *testing.T) *corev1.Pod {
	t.Helper()
	list, err := r.b.cs.CoreV1().Pods(trustNS).List(t.Context(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=node-agent,app.kubernetes.io/instance=" + trustRelease})
	require.NoError(t, err)
	for i := range list.Items {
		if p := &list.Items[i]; p.DeletionTimestamp == nil && p.Spec.NodeName == r.b.node.Name {
			return p
		}
	}
	return nil
}

// describe says where the release's Pods are, with the agent's last
// lines.
func (r *trustInstall) describe(t *testing.T) string {
	t.Helper()
	list, err := r.b.cs.CoreV1().Pods(trustNS).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var out []string
	for i := range list.Items {
		p := &list.Items[i]
		out = append(out, p.Name+": "+describe(p))
		for _, c := range p.Spec.Containers {
			if log, err := r.b.node.ContainerLog(p, c.Name); err == nil {
				lines := strings.Split(strings.TrimSpace(log), "\n")
				out = append(out, "  "+strings.Join(lines[max(0, len(lines)-10):], "\n  "))
			}
		}
	}
	return strings.Join(out, "\n")
}

// applied waits until the agent's annotation on the Node is as done says,
// and returns it.
func (r *trustInstall) applied(t *testing.T, done func(nodeagent.Status) bool) nodeagent.Status {
	t.Helper()
	var s nodeagent.Status
	var raw string
	waitFor(t, 30*time.Second, "the agent's annotation on its Node", func() bool {
		raw = r.b.nodeObject(t).Annotations[nodeagent.Annotation]
		s = nodeagent.Status{}
		return raw != "" && json.Unmarshal([]byte(raw), &s) == nil && done(s)
	})
	return s
}

// agentMetrics returns the agent's metrics (on its Pod's IP, over the
// node's bridge), by series.
func (r *trustInstall) agentMetrics(t *testing.T) map[string]float64 {
	t.Helper()
	p := r.agentPod(t)
	require.NotNil(t, p)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+p.Status.PodIP+":8080/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	series := regexp.MustCompile(`^(regcred_node_agent_\S+) (\S+)$`)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := series.FindStringSubmatch(sc.Text()); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			require.NoError(t, err)
			out[m[1]] = v
		}
	}
	require.NoError(t, errors.Join(sc.Err(), resp.Body.Close()))
	return out
}

// podOf creates a Pod of one container running image, with this pull
// policy, scheduled by kube-scheduler.
func (b *bed) podOf(t *testing.T, ns, name, image string, policy corev1.PullPolicy) *corev1.Pod {
	t.Helper()
	p, err := b.cs.CoreV1().Pods(ns).Create(t.Context(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{{Name: "app", Image: image, ImagePullPolicy: policy}},
			TerminationGracePeriodSeconds: new(int64),
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return p
}

// nodeObject reads the bed's Node.
func (b *bed) nodeObject(t *testing.T) *corev1.Node {
	t.Helper()
	n, err := b.cs.CoreV1().Nodes().Get(t.Context(), b.node.Name, metav1.GetOptions{})
	require.NoError(t, err)
	return n
}

// files returns every file under dir, by path relative to it, with its
// content.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return nil
	}))
	return out
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// waitFor polls cond every 50ms until it holds, or fails the test.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNow(t, "timed out", "%s: not within %s", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
