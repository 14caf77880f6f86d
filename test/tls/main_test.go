// Package tls runs regcred with the TLS material it keeps itself
// (--tls-secret) against a real kube-apiserver: the API server calls the
// webhook trusting only the caBundle regcred puts in its webhook
// configurations, through renewals of the certificate and of the CA.
package tls

import (
	"fmt"
	"os"
	"testing"

	"github.com/regcred/regcred/test/testbed"
)

var cp *testbed.ControlPlane

func TestMain(m *testing.M) {
	var err error
	cp, err = testbed.StartControlPlane(testbed.ControlPlaneOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "tls:", err)
		os.Exit(1)
	}
	code := m.Run()
	cp.Stop()
	os.Exit(code)
}
