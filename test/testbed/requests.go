package testbed

import (
	"net/http"
	"net/url"
	"sync"

	"k8s.io/client-go/rest"
)

// Request is one API request a component made.
type Request struct {
	Method string
	URL    *url.URL
	// Header holds the request's Accept header only (never its Authorization).
	Header http.Header
}

// RequestLog records the API requests made through a rest.Config.
type RequestLog struct {
	mu   sync.Mutex
	reqs []Request
}

// Wrap returns a copy of cfg whose requests are recorded in l.
func (l *RequestLog) Wrap(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			l.mu.Lock()
			l.reqs = append(l.reqs, Request{Method: r.Method, URL: r.URL, Header: http.Header{"Accept": r.Header.Values("Accept")}})
			l.mu.Unlock()
			return rt.RoundTrip(r)
		})
	})
	return c
}

// Requests returns the requests recorded so far.
func (l *RequestLog) Requests() []Request {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Request(nil), l.reqs...)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
