package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// regcred trusts the system's CA roots, as Go reads them on Linux. Where
// the system offers Go no root certificate (the binary alone in a bare
// image of someone else's), it trusts the roots built into the binary
// instead: golang.org/x/crypto/x509roots/fallback's bundle, Mozilla's NSS
// store at the version go.mod pins. regcred's own image carries the same
// roots as a file (pkg/ociimage), which Go reads.
//
// The built-in roots are parsed only where they may be used: importing
// x509roots/fallback parses them at every start and keeps them, about
// 0.5 MB of certificates held for the life of a process that reads the
// system's anyway.
func init() {
	if !systemHasRoots() || forcedFallback(os.Getenv("GODEBUG")) {
		x509.SetFallbackRoots(builtinRoots())
		builtinSet = true
	}
}

// builtinSet records that the built-in roots were given to Go.
var builtinSet bool

// certFiles and certDirs are where Go looks for the system's roots on
// Linux (crypto/x509's root_linux.go).
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

// systemHasRoots says whether Go will find root certificates on this
// system: SSL_CERT_FILE takes the place of Go's list of files, and
// SSL_CERT_DIR (directories separated by ':') of its list of directories,
// as in Go.
func systemHasRoots() bool {
	files, dirs := certFiles, certDirs
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		files = []string{f}
	}
	if d := os.Getenv("SSL_CERT_DIR"); d != "" {
		dirs = strings.Split(d, ":")
	}
	return hasRoots(files, dirs)
}

// hasRoots reads the files and directories as Go's loadSystemRoots does
// (crypto/x509's root_unix.go): the first file of files that can be read,
// and every file of each directory of dirs. It says whether any of them
// holds a certificate Go would load.
func hasRoots(files, dirs []string) bool {
	for _, f := range files {
		if has, err := holdsCertificate(f); err == nil {
			if has {
				return true
			}
			break // Go reads the first file it can, and no other
		}
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if has, err := holdsCertificate(filepath.Join(d, e.Name())); err == nil && has {
				return true
			}
		}
	}
	return false
}

// blockStart starts a PEM block.
var blockStart = []byte("-----BEGIN")

// holdsCertificate says whether the file holds a certificate Go would
// load, as crypto/x509's AppendCertsFromPEM reads one: a PEM CERTIFICATE
// block without headers that parses. An error says the file cannot be
// read (a directory, no permission). It reads until the first such block,
// a few kilobytes into a root bundle, and parses that one certificate.
func holdsCertificate(path string) (bool, error) {
	f, err := os.Open(path) //nolint:gosec // Go's own lists, or the admin's SSL_CERT_FILE and SSL_CERT_DIR, as Go reads them
	if err != nil {
		return false, err
	}
	defer func() { _ = f.Close() }() // read only
	buf := make([]byte, 0, 8<<10)
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, cap(buf))
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		// Each block in the whole lines read so far is the block
		// pem.Decode finds in the whole file: the first END after a BEGIN.
		lines := len(buf)
		if err == nil {
			lines = bytes.LastIndexByte(buf, '\n') + 1
		}
		for {
			block, rest := pem.Decode(buf[:lines])
			if block == nil {
				break
			}
			if block.Type == "CERTIFICATE" && len(block.Headers) == 0 {
				if _, perr := x509.ParseCertificate(block.Bytes); perr == nil {
					return true, nil
				}
			}
			used := lines - len(rest)
			buf = buf[:copy(buf, buf[used:])]
			lines -= used
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		// Before any block starts, keep only the tail that may hold the
		// start of one cut in two by the reads; from a block's start,
		// keep it all until it ends.
		if keep := len(blockStart) - 1; !bytes.Contains(buf, blockStart) && len(buf) > keep {
			buf = buf[:copy(buf, buf[len(buf)-keep:])]
		}
	}
}

// forcedFallback says whether GODEBUG may ask Go to use the fallback
// roots even where the system has its own (x509usefallbackroots=1). It
// errs towards yes: Go reads GODEBUG itself and decides, and built-in
// roots set without need cost only their memory.
func forcedFallback(godebug string) bool {
	return strings.Contains(godebug, "x509usefallbackroots=1")
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
