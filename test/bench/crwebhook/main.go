// Command crwebhook is a benchmark baseline, not part of regcred: a Pod
// webhook as controller-runtime builds one, in a manager with no
// controllers, leader election or metrics, serving controller-runtime's
// admission.Webhook (the review decoded into typed objects, the answer
// encoded) with a handler that does nothing but return the floor's
// one-operation patch. make bench-admission measures regcred against it
// and the floor (test/bench/floor): what controller-runtime's admission
// plumbing costs by itself, in time and in memory.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"log"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// patch adds the pull secret "crwebhook", as the floor adds "floor".
var patch = []byte(`[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"crwebhook"}]}]`)

func handle(context.Context, admission.Request) admission.Response {
	pt := admissionv1.PatchTypeJSONPatch
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true, PatchType: &pt, Patch: patch}}
}

func main() {
	host := flag.String("host", "127.0.0.1", "Address to serve HTTPS on.")
	port := flag.Int("port", 9443, "Port to serve HTTPS on.")
	certDir := flag.String("cert-dir", ".", "Directory of tls.crt and tls.key.")
	probe := flag.String("health-probe-bind-address", "127.0.0.1:8081", "Address of /healthz and /readyz.")
	flag.Parse()
	// A logger that writes nothing. Without one, controller-runtime's
	// placeholder keeps every per-request logger its webhook makes for
	// the first 30 seconds (over 50 MiB under this load).
	ctrl.SetLogger(logr.Discard())
	// --kubeconfig is controller-runtime's own flag.
	cfg, err := ctrl.GetConfig()
	if err != nil {
		log.Fatal(err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: *probe,
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: *host, Port: *port, CertDir: *certDir,
			// The same TLS as regcred's webhook server: HTTP/1.1 only.
			TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	mgr.GetWebhookServer().Register("/mutate", &webhook.Admission{Handler: admission.HandlerFunc(handle)})
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		log.Fatal(err)
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Fatal(err)
	}
}
