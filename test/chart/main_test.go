// Package chart tests the Helm chart in charts/regcred and the plain
// manifests rendered from it: rendering and the values schema with the
// real helm binary, and installs into a real kube-apiserver, whose
// webhook configuration and RBAC are exercised by regcred itself.
package chart

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regcred/regcred/test/testbed"
)

// chartDir is the chart under test, from this package's directory.
const chartDir = "../../charts/regcred"

// helmHome keeps helm's config, cache and data out of the user's home.
var helmHome string

// shared is the control plane of the install tests, started by the first
// test that needs it.
var shared struct {
	once sync.Once
	cp   *testbed.ControlPlane
	err  error
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		code = 1
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	var err error
	helmHome, err = os.MkdirTemp("", "regcred-helm-")
	if err != nil {
		return 1, err
	}
	defer func() { _ = os.RemoveAll(helmHome) }()
	code := m.Run()
	if shared.cp != nil {
		shared.cp.Stop()
	}
	return code, nil
}

// controlPlane returns the shared control plane, starting it on first use.
func controlPlane(t *testing.T) *testbed.ControlPlane {
	t.Helper()
	shared.once.Do(func() {
		shared.cp, shared.err = testbed.StartControlPlane(testbed.ControlPlaneOptions{ControllerManager: true})
	})
	if shared.err != nil {
		t.Fatalf("starting the control plane: %v", shared.err)
	}
	return shared.cp
}

// helm runs the test bed's helm with args and returns its stdout, and its
// stderr as the error's text when it fails.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := testbed.Bin("helm")
	if err != nil {
		t.Fatalf("helm: %v", err)
	}
	// Not t.Context(): cleanups (helm uninstall) run after it is canceled.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("helm %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}
