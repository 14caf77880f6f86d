package testbed

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// ChartDir is regcred's Helm chart in this checkout.
func ChartDir() string { return filepath.Join(repoRoot(), "charts", "regcred") }

// Helm runs the test bed's helm against one cluster, with its own config,
// cache and data directories: nothing of the user's helm is read or
// written.
type Helm struct {
	kubeconfig string
	home       string
}

// NewHelm returns a Helm for the cluster of kubeconfig; Close removes its
// directories.
func NewHelm(kubeconfig string) (*Helm, error) {
	if _, err := Bin("helm"); err != nil {
		return nil, err
	}
	home, err := os.MkdirTemp("", "regcred-helm-")
	if err != nil {
		return nil, err
	}
	return &Helm{kubeconfig: kubeconfig, home: home}, nil
}

// Run runs helm with args and returns its stdout; its error quotes
// helm's stderr.
func (h *Helm) Run(ctx context.Context, args ...string) (string, error) {
	bin, err := Bin("helm")
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, append(args, "--kubeconfig", h.kubeconfig)...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(h.home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(h.home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(h.home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// ValuesFile writes chart values to a file in helm's directory, for
// --values, and returns its path.
func (h *Helm) ValuesFile(values map[string]any) (string, error) {
	b, err := yaml.Marshal(values)
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(h.home, "values-*.yaml")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}

// Close removes helm's directories.
func (h *Helm) Close() error { return os.RemoveAll(h.home) }

// NodeValues are the chart values regcred needs on a test bed node: its
// image (repository and tag), pulled with the Secret pullSecret of its
// namespace, and the API server's address in extraEnv (there is no
// kube-proxy for the kubernetes Service). Add the config and the rest.
func NodeValues(n *Node, repository, tag, pullSecret string) map[string]any {
	env := []any{}
	for _, e := range n.PodAPIServerEnv() {
		env = append(env, map[string]any{"name": e.Name, "value": e.Value})
	}
	return map[string]any{
		"image":            map[string]any{"repository": repository, "tag": tag},
		"imagePullSecrets": []any{map[string]any{"name": pullSecret}},
		"extraEnv":         env,
	}
}
