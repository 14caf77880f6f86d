// Command floor is a benchmark baseline, not part of regcred: the least a
// Pod webhook can do. It reads an AdmissionReview with encoding/json (the
// request's UID and the Pod's images, nothing else), and allows the Pod
// with a one-operation JSON patch that adds an image pull secret, over
// HTTPS with net/http alone: no controller-runtime, no metrics, no
// config. make bench-admission measures regcred against it.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// review is what the floor reads of an AdmissionReview.
type review struct {
	APIVersion string `json:"apiVersion"`
	Request    *struct {
		UID    string `json:"uid"`
		Object struct {
			Spec struct {
				Containers []struct {
					Image string `json:"image"`
				} `json:"containers"`
			} `json:"spec"`
		} `json:"object"`
	} `json:"request"`
}

type response struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Response   struct {
		UID       string `json:"uid"`
		Allowed   bool   `json:"allowed"`
		PatchType string `json:"patchType,omitempty"`
		Patch     []byte `json:"patch,omitempty"`
	} `json:"response"`
}

// patch adds the pull secret "floor".
var patch = []byte(`[{"op":"add","path":"/spec/imagePullSecrets","value":[{"name":"floor"}]}]`)

func mutate(w http.ResponseWriter, r *http.Request) {
	var in review
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 7<<20)).Decode(&in); err != nil || in.Request == nil {
		http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
		return
	}
	var out response
	out.APIVersion, out.Kind = "admission.k8s.io/v1", "AdmissionReview"
	out.Response.UID, out.Response.Allowed = in.Request.UID, true
	if len(in.Request.Object.Spec.Containers) > 0 {
		out.Response.PatchType, out.Response.Patch = "JSONPatch", patch
	}
	b, err := json.Marshal(&out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b) //nolint:gosec // G705: an application/json body, not HTML
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9443", "Address to serve HTTPS on.")
	cert := flag.String("cert", "tls.crt", "Serving certificate.")
	key := flag.String("key", "tls.key", "Serving key.")
	flag.Parse()
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/mutate", mutate)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = fmt.Fprintln(w, "ok") })
	srv := &http.Server{
		Addr:              *addr,
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// The same TLS as regcred's webhook server: HTTP/1.1 only.
		TLSConfig:    &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
	}
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		<-stop
		_ = srv.Close()
	}()
	if err := srv.ListenAndServeTLS("", ""); err != nil && err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
