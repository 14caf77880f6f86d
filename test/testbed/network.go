package testbed

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// podNetwork is the node's Pod network: a Linux bridge that only the test
// bed uses, and a CNI conflist that attaches each Pod to it with an
// address from a private subnet.
//
// Pods get no default route and the bridge is no gateway: a Pod reaches
// only the subnet (other Pods, and the host at the bridge's address), so
// nothing a Pod sends can leave the machine. The API server reaches Pods
// through the bridge's connected route.
type podNetwork struct {
	bridge string
	subnet netip.Prefix
	// hostIP is the bridge's own address, the node's InternalIP.
	hostIP netip.Addr
}

func newPodNetwork(bridge, subnet string) (*podNetwork, error) {
	if len(bridge) > 15 {
		return nil, fmt.Errorf("bridge name %q is longer than 15 characters", bridge)
	}
	p, err := netip.ParsePrefix(subnet)
	if err != nil {
		return nil, fmt.Errorf("pod subnet %q: %w", subnet, err)
	}
	p = p.Masked()
	if !p.Addr().Is4() || !p.Addr().IsPrivate() || p.Bits() > 28 {
		return nil, fmt.Errorf("pod subnet %s: want a private IPv4 range of at least 16 addresses", p)
	}
	return &podNetwork{bridge: bridge, subnet: p, hostIP: p.Addr().Next()}, nil
}

// ip runs the ip command.
func ip(args ...string) error {
	if b, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(b)))
	}
	return nil
}

// up creates the bridge with the host's address: the kubelet wants its
// node IP on an interface before the first Pod exists.
func (n *podNetwork) up() error {
	if _, err := os.Stat("/sys/class/net/" + n.bridge); err == nil {
		return fmt.Errorf("bridge %s exists already: another node of the test bed runs here, or one was not stopped (ip link del %s)", n.bridge, n.bridge)
	}
	if err := ip("link", "add", "name", n.bridge, "type", "bridge"); err != nil {
		return err
	}
	err := ip("addr", "add", fmt.Sprintf("%s/%d", n.hostIP, n.subnet.Bits()), "dev", n.bridge)
	if err == nil {
		err = ip("link", "set", n.bridge, "up")
	}
	if err != nil {
		_ = n.down()
	}
	return err
}

// down deletes the bridge; the Pods' veth pairs went with their network
// namespaces.
func (n *podNetwork) down() error {
	if _, err := os.Stat("/sys/class/net/" + n.bridge); err != nil {
		return nil
	}
	return ip("link", "del", n.bridge)
}

// writeConflist writes the CNI configuration into confDir, and keeps the
// host-local IPAM's allocations in stateDir.
func (n *podNetwork) writeConflist(confDir, stateDir string) error {
	first := n.hostIP.Next()
	last := lastAddr(n.subnet)
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "regcred-testbed",
		"plugins": []any{map[string]any{
			"type":        "bridge",
			"bridge":      n.bridge,
			"isGateway":   false,
			"ipMasq":      false,
			"hairpinMode": true,
			"ipam": map[string]any{
				"type":    "host-local",
				"dataDir": stateDir,
				"ranges": [][]map[string]string{{{
					"subnet":     n.subnet.String(),
					"rangeStart": first.String(),
					"rangeEnd":   last.String(),
				}}},
			},
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(confDir, 0o750); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(confDir, "10-regcred-testbed.conflist"), b, 0o600)
}

// lastAddr returns the last address of p before its broadcast address.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := binary.BigEndian.Uint32(a[:]) | host
	v-- // the broadcast address
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// writeFileAtomic writes a file that a watcher must never see half
// written: into a temporary file beside it, then renamed.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// bridgePrefix starts the name of every test bed node's bridge.
const bridgePrefix = "regcred-br"

// UniqueNode returns the options of a node that no other test bed node
// on this machine uses (another run of the tests, from another clone, at
// the same time): a name (and so its cgroups), a bridge and a Pod subnet
// of its own; and the node's IP, for ControlPlaneOptions.NodeIP.
func UniqueNode() (NodeOptions, string, error) {
	used := map[netip.Prefix]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return NodeOptions{}, "", err
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() {
			used[netip.PrefixFrom(p.Addr(), 24).Masked()] = true
		}
	}
	for _, i := range rand.Perm(254) { //nolint:gosec // spreads test bed nodes over subnets, no secret
		n := i + 1
		subnet := netip.MustParsePrefix(fmt.Sprintf("10.217.%d.0/24", n))
		bridge := fmt.Sprintf("%s%d", bridgePrefix, n)
		if used[subnet] || cgroupRootExists("/regcred-testbed-regcred-node-"+fmt.Sprint(n)) {
			continue
		}
		if _, err := os.Stat("/sys/class/net/" + bridge); err == nil {
			continue
		}
		return NodeOptions{Name: fmt.Sprintf("regcred-node-%d", n), Bridge: bridge, PodSubnet: subnet.String()}, subnet.Addr().Next().String(), nil
	}
	return NodeOptions{}, "", errors.New("no free Pod subnet in 10.217.0.0/16 for a node")
}

// otherBridges reports whether a bridge of another test bed node exists.
func otherBridges(own string) bool {
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		return false
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), bridgePrefix) && e.Name() != own {
			return true
		}
	}
	return false
}
