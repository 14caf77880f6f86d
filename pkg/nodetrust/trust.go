package nodetrust

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/regcred/regcred/pkg/image"
)

// Key is the ConfigMap key that holds the published Trust.
const Key = "trust.json"

// Format is the version of the published document; an agent refuses a
// document of another format rather than guess at it.
const Format = 1

// Mode is what a node's runtime does for a registry host.
type Mode string

// The modes, from a registry's connection.
const (
	// ModeCA verifies the registry's TLS against the system roots and the
	// published CA (secure-with-ca).
	ModeCA Mode = "ca"
	// ModeSkipVerify speaks TLS without verifying it (insecure, https).
	ModeSkipVerify Mode = "skip-verify"
	// ModePlainHTTP speaks plain HTTP (insecure, http://).
	ModePlainHTTP Mode = "plain-http"
)

// Modes lists every mode.
var Modes = []Mode{ModeCA, ModeSkipVerify, ModePlainHTTP}

// ParseMode returns the mode named s.
func ParseMode(s string) (Mode, error) {
	if i := slices.Index(Modes, Mode(s)); i >= 0 {
		return Modes[i], nil
	}
	return "", fmt.Errorf("%q is not one of %s, %s, %s", s, ModeCA, ModeSkipVerify, ModePlainHTTP)
}

// Host is what nodes must do for one registry host.
type Host struct {
	// Host is host[:port], as image references name it (the directory
	// name of containerd's certs.d).
	Host string `json:"host"`
	// PlainHTTP: the node speaks plain HTTP to the host. With CA or
	// SkipVerify as well (registries of the host disagree), containerd
	// tries HTTPS first and falls back to HTTP.
	PlainHTTP bool `json:"plainHTTP,omitempty"`
	// SkipVerify: TLS is not verified.
	SkipVerify bool `json:"skipVerify,omitempty"`
	// CA is PEM, certificates only: TLS is verified against it (and the
	// system roots). Empty with SkipVerify.
	CA string `json:"ca,omitempty"`
	// Registries are the names of the registries that asked for this,
	// for the record.
	Registries []string `json:"registries"`
}

// Mode is the host's mode, as reported: plain HTTP if the node speaks it
// at all, else skipped verification, else a CA.
func (h Host) Mode() Mode {
	switch {
	case h.PlainHTTP:
		return ModePlainHTTP
	case h.SkipVerify:
		return ModeSkipVerify
	}
	return ModeCA
}

// Trust is what every node must trust: the published document.
type Trust struct {
	Format int `json:"format"`
	// Hosts are sorted by host.
	Hosts []Host `json:"hosts"`
	// Notes say which registries were left out, and why, and how the
	// registries of one host were reconciled. For the admin; agents
	// ignore them.
	Notes []string `json:"notes,omitempty"`
}

// Encode returns the document as published.
func (t Trust) Encode() ([]byte, error) {
	t.Format = Format
	if t.Hosts == nil {
		t.Hosts = []Host{}
	}
	return json.MarshalIndent(t, "", "  ")
}

// Decoded is a published document as an agent reads it.
type Decoded struct {
	// Hosts are the valid entries.
	Hosts []Host
	// Invalid are the hosts whose entry is invalid: an agent leaves their
	// files as they are (neither written nor removed).
	Invalid []string
}

// Decode reads a published document. A document that is not one, or of
// another format, is an error and nothing of it is usable; an invalid
// entry is left out (its host, if it names one, listed in Invalid) and
// reported in the error, the others are usable.
func Decode(data []byte) (Decoded, error) {
	var t Trust
	if err := json.Unmarshal(data, &t); err != nil {
		return Decoded{}, fmt.Errorf("not a node trust document: %w", err)
	}
	if t.Format != Format {
		return Decoded{}, fmt.Errorf("format %d: this agent reads format %d (regcred and its node agent must be the same version)", t.Format, Format)
	}
	var d Decoded
	var errs []error
	seen := map[string]bool{}
	for i, h := range t.Hosts {
		err := h.Validate()
		if err == nil && seen[h.Host] {
			err = errors.New("is listed twice")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("hosts[%d] %q: %w", i, h.Host, err))
			if ValidHost(h.Host) == nil && !slices.Contains(d.Invalid, h.Host) {
				d.Invalid = append(d.Invalid, h.Host)
			}
			continue
		}
		seen[h.Host] = true
		d.Hosts = append(d.Hosts, h)
	}
	// A host listed twice is invalid as a whole, its first entry too.
	d.Hosts = slices.DeleteFunc(d.Hosts, func(h Host) bool { return slices.Contains(d.Invalid, h.Host) })
	return d, errors.Join(errs...)
}

// Validate checks an entry: a host a node can be configured for, and
// something to do for it.
func (h Host) Validate() error {
	if err := ValidHost(h.Host); err != nil {
		return err
	}
	// Registry names go into a comment of the runtime's file: DNS labels
	// only, never a line break.
	for _, n := range h.Registries {
		if msgs := validation.IsDNS1123Label(n); len(msgs) > 0 {
			return fmt.Errorf("registry name %q: %s", n, strings.Join(msgs, "; "))
		}
	}
	switch {
	case h.CA != "" && h.SkipVerify:
		return errors.New("ca and skipVerify together: verification is either skipped or done against the CA")
	case h.CA == "" && !h.SkipVerify && !h.PlainHTTP:
		return errors.New("nothing to trust: no ca, skipVerify or plainHTTP")
	case h.CA != "":
		if _, err := certificatesOnly([]byte(h.CA)); err != nil {
			return fmt.Errorf("ca: %w", err)
		}
	}
	return nil
}

// ValidHost checks that host is a registry host a node can be configured
// for: host[:port] as image references write it, in lower case, without a
// path or a glob; so also a safe directory name.
func ValidHost(host string) error {
	loc, err := image.ParseLocation(host)
	switch {
	case err != nil:
		return fmt.Errorf("not a registry host: %w", err)
	case loc.Glob():
		return errors.New("a glob host cannot be configured per host on a node")
	case loc.Prefix != "" || loc.Host != host:
		return fmt.Errorf("not a registry host as image references write it (%s)", loc.Host)
	}
	return nil
}

// certificatesOnly returns the certificates of a PEM bundle, re-encoded:
// every block must be a CERTIFICATE that parses, so that nothing else (a
// private key pasted with the certificate) is ever published.
func certificatesOnly(data []byte) ([][]byte, error) {
	var ders [][]byte
	rest := bytes.TrimSpace(data)
	for len(rest) > 0 {
		block, next := pem.Decode(rest)
		// pem.Decode skips what it cannot decode, a broken block
		// included: what it read must be the one block, from the start.
		read := rest[:len(rest)-len(next)]
		if block == nil || !bytes.HasPrefix(rest, []byte("-----BEGIN ")) || bytes.Count(read, []byte("-----BEGIN ")) != 1 {
			return nil, errors.New("holds something that is not a PEM block")
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("holds a %s block: only certificates are published", block.Type)
		}
		if len(block.Headers) > 0 {
			return nil, errors.New("holds a certificate block with headers, which TLS clients do not read")
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return nil, fmt.Errorf("holds a certificate that does not parse: %w", err)
		}
		ders = append(ders, block.Bytes)
		rest = bytes.TrimSpace(next)
	}
	if len(ders) == 0 {
		return nil, errors.New("holds no certificate")
	}
	return ders, nil
}

// encodePEM writes certificates as PEM.
func encodePEM(ders [][]byte) string {
	var b bytes.Buffer
	for _, der := range ders {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return b.String()
}
