package harness

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Client returns an HTTPS client for at most conns keep-alive connections
// to a webhook whose certificate caPEM signed, HTTP/1.1 as the API server
// speaks to webhooks.
func Client(caPEM []byte, conns int) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no CA certificate")
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}, nil
}

// Result is what a load run did.
type Result struct {
	Requests int
	Errors   int
	Elapsed  time.Duration
	// FirstError is the first failure, if any.
	FirstError error
}

// PerSecond is the rate of successful requests.
func (r Result) PerSecond() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Direct posts body to url from conc clients, one keep-alive connection
// each, for d. An answer counts when it is HTTP 200 and allows the Pod.
func Direct(ctx context.Context, c *http.Client, url string, body []byte, conc int, d time.Duration) Result {
	var ok, failed atomic.Int64
	var first error
	var once sync.Once
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			buf := make([]byte, 0, 4096)
			for ctx.Err() == nil {
				var err error
				buf, err = post(c, url, body, buf)
				switch {
				case err == nil:
					ok.Add(1)
				case ctx.Err() != nil:
				default:
					failed.Add(1)
					once.Do(func() { first = err })
				}
			}
		})
	}
	wg.Wait()
	return Result{Requests: int(ok.Load()), Errors: int(failed.Load()), Elapsed: time.Since(start), FirstError: first}
}

// post sends one review and reads the answer into buf.
func post(c *http.Client, url string, body, buf []byte) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return buf, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return buf, err
	}
	defer func() { _ = resp.Body.Close() }()
	b := bytes.NewBuffer(buf[:0])
	if _, err := io.Copy(b, resp.Body); err != nil {
		return buf, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b.Bytes(), []byte(`"allowed":true`)) {
		return b.Bytes(), fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b.Bytes())
	}
	return b.Bytes(), nil
}

// CreatePods creates n Pods like pod in namespace ns from conc clients
// at once, and returns how long it took.
func CreatePods(ctx context.Context, cs kubernetes.Interface, ns string, pod *corev1.Pod, n, conc int) Result {
	var next, ok, failed atomic.Int64
	var first error
	var once sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for next.Add(1) <= int64(n) && ctx.Err() == nil {
				p := pod.DeepCopy()
				if _, err := cs.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
					failed.Add(1)
					once.Do(func() { first = err })
					continue
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return Result{Requests: int(ok.Load()), Errors: int(failed.Load()), Elapsed: time.Since(start), FirstError: first}
}
