package testbed

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy is a TCP proxy, on loopback unless told otherwise: a load
// balancer over backends that answer their readiness probe (a Service,
// without kube-proxy), a stand-in for a link that goes down (an API server
// outage, as its clients see it), or the way from a node's Pods to a
// loopback server. TLS passes through it untouched.
type Proxy struct {
	// Addr is where it listens (host:port).
	Addr string

	ln       net.Listener
	backends []Backend
	down     atomic.Bool
	next     atomic.Uint64
	ready    []atomic.Bool
	mu       sync.Mutex
	conns    map[net.Conn]bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// Backend is one address the proxy forwards to; Ready, when set, is the
// URL of its readiness probe (any 2xx answer is ready).
type Backend struct {
	Addr  string
	Ready string
}

// StartProxy listens on a free loopback port and forwards each connection
// to a ready backend, in turn.
func StartProxy(backends ...Backend) (*Proxy, error) {
	return StartProxyOn("127.0.0.1:0", backends...)
}

// StartProxyOn is StartProxy listening on addr (host:port; port 0 picks
// a free one), e.g. a node's address, where its Pods reach the proxy.
func StartProxyOn(addr string, backends ...Backend) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("proxy listening on %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{Addr: ln.Addr().String(), ln: ln, backends: backends, ready: make([]atomic.Bool, len(backends)), conns: map[net.Conn]bool{}, cancel: cancel}
	for i, b := range backends {
		if b.Ready == "" {
			p.ready[i].Store(true)
			continue
		}
		p.wg.Go(func() { p.probe(ctx, i, b.Ready) })
	}
	p.wg.Go(p.accept)
	return p, nil
}

// probe keeps a backend's readiness up to date, as a Service's endpoints are.
func (p *Proxy) probe(ctx context.Context, i int, url string) {
	c := &http.Client{Timeout: 500 * time.Millisecond}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		ok := err == nil && resp.StatusCode/100 == 2
		if resp != nil {
			_ = resp.Body.Close()
		}
		p.ready[i].Store(ok)
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// SetDown takes the link down (every connection is closed, new ones are
// refused) or brings it back.
func (p *Proxy) SetDown(down bool) {
	p.down.Store(down)
	if down {
		p.mu.Lock()
		for c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
	}
}

// Ready says how many backends answer their probe.
func (p *Proxy) Ready() int {
	n := 0
	for i := range p.ready {
		if p.ready[i].Load() {
			n++
		}
	}
	return n
}

// pick returns the ready backends, the next in turn first.
func (p *Proxy) pick() []string {
	n := uint64(len(p.backends))
	start := p.next.Add(1)
	var addrs []string
	for k := range n {
		i := (start + k) % n
		if p.ready[i].Load() {
			addrs = append(addrs, p.backends[i].Addr)
		}
	}
	return addrs
}

func (p *Proxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		addrs := p.pick()
		if p.down.Load() || len(addrs) == 0 {
			_ = in.Close()
			continue
		}
		p.wg.Go(func() { p.forward(in, addrs) })
	}
}

// forward joins in to the first of addrs that answers: a backend that has
// just stopped is still ready until its next probe, and a connection sent
// there would fail, where a Service's endpoints would have dropped it.
func (p *Proxy) forward(in net.Conn, addrs []string) {
	var out net.Conn
	for _, addr := range addrs {
		var err error
		if out, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			break
		}
	}
	if out == nil {
		_ = in.Close()
		return
	}
	p.track(in, out, true)
	defer p.track(in, out, false)
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
	_ = in.Close()
	_ = out.Close()
	<-done
}

func (p *Proxy) track(in, out net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[in], p.conns[out] = true, true
	} else {
		delete(p.conns, in)
		delete(p.conns, out)
	}
}

// Stop closes the proxy and every connection through it.
func (p *Proxy) Stop() {
	p.cancel()
	_ = p.ln.Close()
	p.SetDown(true)
	p.wg.Wait()
}
