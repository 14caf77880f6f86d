package main

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// regcred trusts the system's CA roots, as Go reads them on Linux. Where
// the system has none at all (the binary alone in a bare image of
// someone else's), it trusts the roots built into the binary instead:
// golang.org/x/crypto/x509roots/fallback's bundle, Mozilla's NSS store at
// the version go.mod pins. regcred's own image carries the same roots as
// a file (pkg/ociimage), which Go reads.
//
// The built-in roots are parsed only where they are used: importing
// x509roots/fallback parses them at every start and keeps them, about
// 0.5 MB of certificates held for the life of a process that reads the
// system's anyway.
func init() {
	if !systemHasRoots() || forcedFallback(os.Getenv("GODEBUG")) {
		x509.SetFallbackRoots(builtinRoots())
	}
}

// certFiles and certDirs are where Go looks for the system's roots on
// Linux (crypto/x509's root_linux.go); SSL_CERT_FILE and SSL_CERT_DIR
// take their place when set.
var (
	certFiles = []string{
		"/etc/ssl/certs/ca-certificates.crt",
		"/etc/pki/tls/certs/ca-bundle.crt",
		"/etc/ssl/ca-bundle.pem",
		"/etc/pki/tls/cacert.pem",
		"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
		"/etc/ssl/cert.pem",
	}
	certDirs = []string{"/etc/ssl/certs", "/etc/pki/tls/certs"}
)

// systemHasRoots says whether the system has a file or directory of
// roots for Go to read: a file that is not empty, or a directory with an
// entry. Go falls back only when it finds no roots at all; a file that
// exists but holds no certificate is taken as the admin's choice, and
// not second-guessed.
func systemHasRoots() bool {
	files := certFiles
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		files = []string{f}
	}
	for _, f := range files {
		fi, err := os.Stat(f) //nolint:gosec // Go's own list, or the admin's SSL_CERT_FILE, as Go reads it
		if err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
			return true
		}
	}
	dirs := certDirs
	if d := os.Getenv("SSL_CERT_DIR"); d != "" {
		dirs = filepath.SplitList(d)
	}
	for _, d := range dirs {
		if entries, err := os.ReadDir(d); err == nil && len(entries) > 0 {
			return true
		}
	}
	return false
}

// forcedFallback says whether GODEBUG asks Go to use the fallback roots
// even where the system has its own (x509usefallbackroots=1).
func forcedFallback(godebug string) bool {
	forced := false
	for s := range strings.SplitSeq(godebug, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(s), "x509usefallbackroots="); ok {
			forced = v == "1" // the last setting wins, as in Go
		}
	}
	return forced
}

// builtinRoots parses the roots built into the binary, each with the
// constraint the bundle gives it (NSS "distrust after" dates).
func builtinRoots() *x509.CertPool {
	p := x509.NewCertPool()
	for c := range bundle.Roots() {
		cert, err := x509.ParseCertificate(c.Certificate)
		if err != nil {
			panic("regcred: a built-in CA root does not parse: " + err.Error())
		}
		if c.Constraint == nil {
			p.AddCert(cert)
		} else {
			p.AddCertWithConstraint(cert, c.Constraint)
		}
	}
	return p
}
