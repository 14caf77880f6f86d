package nodetrust

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/registries"
)

// Decide returns what nodes must trust for these registries: for each
// registry host, the union of what its registries ask for.
//
//   - secure-with-ca: verify TLS against the registry's CA (its
//     certificates only: any other PEM block is left out);
//   - insecure with an http:// URL: plain HTTP;
//   - insecure otherwise: TLS without verification;
//   - secure: nothing (the system roots).
//
// A glob host cannot be configured per host on a node: it is left out,
// with a note. Registries that share a host (path prefixes) are merged:
// their CAs are unioned; when their modes disagree the node does what lets
// every one of them pull (plain HTTP, tried after HTTPS when some want
// TLS; skipped verification over a CA) and a note says so. The cluster
// policy does not matter: trusting a registry's CA gives no credential.
func Decide(regs []*registries.Registry) Trust {
	type want struct {
		host       string
		registries []string
		modes      map[config.ConnectionMode][]string // connection: registry names
		plainHTTP  []string
		skip       []string
		cas        [][]byte
	}
	byHost := map[string]*want{}
	var notes []string
	for _, r := range regs {
		if r.Location.Glob() {
			if r.Connection != config.Secure {
				notes = append(notes, fmt.Sprintf("registry %q: host %s is a glob, which cannot be configured per host on a node: its connection %s is not applied to nodes (declare each host)", r.Name, r.Location.Host, r.Connection))
			}
			continue
		}
		w := byHost[r.Location.Host]
		if w == nil {
			w = &want{host: r.Location.Host, modes: map[config.ConnectionMode][]string{}}
			byHost[r.Location.Host] = w
		}
		w.modes[r.Connection] = append(w.modes[r.Connection], r.Name)
		switch r.Connection {
		case config.SecureWithCA:
			ders := r.CACerts
			if len(ders) == 0 {
				notes = append(notes, fmt.Sprintf("registry %q: caCert holds no certificate: nodes are not told to trust %s", r.Name, r.Location.Host))
				continue
			}
			for _, der := range ders {
				if !slices.ContainsFunc(w.cas, func(d []byte) bool { return bytes.Equal(d, der) }) {
					w.cas = append(w.cas, der)
				}
			}
		case config.Insecure:
			if r.PlainHTTP {
				w.plainHTTP = append(w.plainHTTP, r.Name)
			} else {
				w.skip = append(w.skip, r.Name)
			}
		default:
			continue
		}
		w.registries = append(w.registries, r.Name)
	}
	var t Trust
	for _, w := range byHost {
		if len(w.registries) == 0 {
			continue // secure only
		}
		h := Host{Host: w.host, Registries: w.registries, PlainHTTP: len(w.plainHTTP) > 0, SkipVerify: len(w.skip) > 0}
		if !h.SkipVerify {
			h.CA = encodePEM(w.cas)
		}
		if n := conflict(w.host, w.modes, w.plainHTTP, w.skip, len(w.cas) > 0); n != "" {
			notes = append(notes, n)
		}
		t.Hosts = append(t.Hosts, h)
	}
	slices.SortFunc(t.Hosts, func(a, b Host) int { return cmp.Compare(a.Host, b.Host) })
	slices.Sort(notes)
	t.Notes = notes
	return t
}

// conflict describes how registries of one host that disagree were
// reconciled; empty when they agree.
func conflict(host string, modes map[config.ConnectionMode][]string, plainHTTP, skip []string, hasCA bool) string {
	verified := slices.Concat(modes[config.Secure], modes[config.SecureWithCA])
	slices.Sort(verified)
	names := func(n []string) string { return `"` + strings.Join(n, `", "`) + `"` }
	switch {
	case len(plainHTTP) > 0 && len(skip)+len(verified) > 0:
		tls := slices.Concat(verified, skip)
		slices.Sort(tls)
		// containerd tries HTTPS before plain HTTP only when TLS is
		// configured for the host.
		how := "plain HTTP only (nothing configures TLS for the host)"
		switch {
		case len(skip) > 0:
			how = "HTTPS without verification first, then plain HTTP"
		case hasCA:
			how = "HTTPS verified against the CA first, then plain HTTP"
		}
		return fmt.Sprintf("host %s: registries %s use plain HTTP (http:// URL) and %s TLS: nodes use %s; make them agree", host, names(plainHTTP), names(tls), how)
	case len(skip) > 0 && len(verified) > 0:
		return fmt.Sprintf("host %s: registries %s are insecure and %s verify TLS: nodes skip verification for the host, which lets every one pull; make them agree", host, names(skip), names(verified))
	}
	return ""
}
