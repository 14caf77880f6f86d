package testbed

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"sigs.k8s.io/yaml"
)

// kubeletSettings is what the kubelet of a Node is started with.
type kubeletSettings struct {
	name        string
	dir         string
	kubeconfig  string
	clientCA    string
	runtime     string // CRI endpoint
	nodeIP      string
	cgroupRoot  string
	port        int
	healthzPort int
}

// kubeletConfig returns the KubeletConfiguration: what this machine needs
// (cgroup v1 with no systemd, swap allowed, no host resolv.conf) and a
// kubelet that listens on loopback only and authenticates and authorizes
// every request through the API server.
func kubeletConfig(s kubeletSettings) ([]byte, error) {
	cfg := map[string]any{
		"apiVersion":               "kubelet.config.k8s.io/v1beta1",
		"kind":                     "KubeletConfiguration",
		"address":                  "127.0.0.1",
		"port":                     s.port,
		"readOnlyPort":             0,
		"healthzBindAddress":       "127.0.0.1",
		"healthzPort":              s.healthzPort,
		"containerRuntimeEndpoint": s.runtime,
		"cgroupDriver":             "cgroupfs",
		"cgroupRoot":               s.cgroupRoot,
		"failCgroupV1":             false,
		"failSwapOn":               false,
		"resolvConf":               "",
		"podLogsDir":               filepath.Join(s.dir, "pod-logs"),
		"authentication": map[string]any{
			"anonymous": map[string]any{"enabled": false},
			"webhook":   map[string]any{"enabled": true},
			"x509":      map[string]any{"clientCAFile": s.clientCA},
		},
		"authorization": map[string]any{"mode": "Webhook"},
		// The test bed shares the machine's disk: never evict or collect
		// images because of what other work stores there.
		"evictionHard": map[string]string{
			"memory.available": "100Mi", "nodefs.available": "1%",
			"imagefs.available": "1%", "nodefs.inodesFree": "1%",
		},
		"imageGCHighThresholdPercent": 100,
		"imageGCLowThresholdPercent":  99,
		"serializeImagePulls":         false,
		"shutdownGracePeriod":         "0s",
		// No KUBE-FIREWALL and canary chains left in the host's iptables:
		// the kubelet needs none of them itself.
		"makeIPTablesUtilChains":    false,
		"nodeStatusReportFrequency": "10s",
	}
	return yaml.Marshal(cfg)
}

// startKubelet writes the kubelet's configuration under s.dir and starts
// it.
func startKubelet(s kubeletSettings, out io.Writer) (*exec.Cmd, chan struct{}, error) {
	bin, err := Bin("kubelet")
	if err != nil {
		return nil, nil, err
	}
	cfg, err := kubeletConfig(s)
	if err != nil {
		return nil, nil, err
	}
	cfgPath := filepath.Join(s.dir, "kubelet.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin,
		"--config="+cfgPath,
		"--kubeconfig="+s.kubeconfig,
		"--root-dir="+filepath.Join(s.dir, "kubelet"),
		"--cert-dir="+filepath.Join(s.dir, "kubelet-pki"),
		"--hostname-override="+s.name,
		"--node-ip="+s.nodeIP,
		"--v=1",
	)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting kubelet: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	return cmd, exited, nil
}

// stopProcess sends SIGTERM, then SIGKILL after grace.
func stopProcess(cmd *exec.Cmd, exited chan struct{}, grace time.Duration) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
	}
}
