// Command certs writes a webhook CA and a serving certificate for local
// runs and the demo: ca.crt (the webhook's caBundle), tls.crt and tls.key
// (regcred's --cert-dir).
//
//	go run ./certs -out certs/generated -hosts 127.0.0.1,localhost
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/regcred/regcred/pkg/certgen"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	out := fs.String("out", "certs/generated", "Directory to write ca.crt, tls.crt and tls.key to.")
	hosts := fs.String("hosts", "127.0.0.1,localhost", "Comma-separated DNS names and IP addresses of the serving certificate.")
	validFor := fs.Duration("valid-for", 365*24*time.Hour, "Validity of the CA and the certificate.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var names []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			names = append(names, h)
		}
	}
	if len(names) == 0 {
		return errors.New("-hosts: name at least one host")
	}
	ca, err := certgen.NewCA("regcred-local-ca", *validFor)
	if err != nil {
		return err
	}
	pair, err := ca.Issue(names, *validFor)
	if err != nil {
		return err
	}
	if err := pair.Write(*out, "tls.crt", "tls.key"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "ca.crt"), ca.CertPEM, 0o644); err != nil { //nolint:gosec // a certificate is public
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %s, %s and %s for %s\n",
		filepath.Join(*out, "ca.crt"), filepath.Join(*out, "tls.crt"), filepath.Join(*out, "tls.key"), strings.Join(names, ", "))
	return err
}
