package testbed

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/regcred/regcred/pkg/certgen"
)

// ECRMode is how the local ECR endpoint answers.
type ECRMode int

// The modes of the local ECR endpoint.
const (
	ECROK       ECRMode = iota
	ECRThrottle         // 400 ThrottlingException, as ECR answers when rate-limited
	ECRFail             // 500 ServerException
)

// ECRCall is one GetAuthorizationToken call the endpoint received.
type ECRCall struct {
	Time        time.Time
	AccessKeyID string
	Region      string
	// Replica is the X-Regcred-Replica header the test's HTTP client adds.
	Replica string
	// SignatureOK says the SigV4 signature was checked against the secret
	// key registered for AccessKeyID and matched.
	SignatureOK bool
	Status      int
}

// ECR is a local endpoint for ecr:GetAuthorizationToken speaking AWS JSON
// 1.1 over HTTPS, to the real AWS SDK client pointed at it by its endpoint
// setting. It mints tokens with a lifetime the test chooses, counts calls,
// can throttle, fail or stall on demand, and fronts real registries with an
// auth proxy that accepts exactly its unexpired tokens, as ECR does.
type ECR struct {
	URL string
	// Client trusts the endpoint's certificate; give it to the SDK.
	Client *http.Client

	ca      *certgen.CA
	server  *http.Server
	mu      sync.Mutex
	life    time.Duration
	mode    ECRMode
	delay   time.Duration
	tokens  map[string]time.Time
	calls   []ECRCall
	secrets map[string]string
	proxies []*http.Server
	routes  map[string]string // ECR registry host -> proxy address
}

// StartECR starts the endpoint on loopback; tokens live lifetime.
func StartECR(ca *certgen.CA, lifetime time.Duration) (*ECR, error) {
	return StartECROn(ca, lifetime, "127.0.0.1")
}

// StartECROn is StartECR listening on ip, with a certificate for it: a
// node's IP, where its Pods reach the endpoint. Front's proxies stay on
// loopback.
func StartECROn(ca *certgen.CA, lifetime time.Duration, ip string) (*ECR, error) {
	e := &ECR{ca: ca, life: lifetime, tokens: map[string]time.Time{}, secrets: map[string]string{}, routes: map[string]string{}}
	addr, err := e.serve(http.HandlerFunc(e.handle), ip, []string{ip})
	if err != nil {
		return nil, err
	}
	e.URL = "https://" + addr
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	e.Client = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}, Timeout: 30 * time.Second}
	return e, nil
}

// serve serves h over TLS on ip, with a certificate for hosts.
func (e *ECR) serve(h http.Handler, ip string, hosts []string) (string, error) {
	pair, err := e.ca.Issue(hosts, 24*time.Hour)
	if err != nil {
		return "", err
	}
	cert, err := tls.X509KeyPair(pair.CertPEM, pair.KeyPEM)
	if err != nil {
		return "", err
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return "", fmt.Errorf("local ECR listening on %s: %w", ip, err)
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	e.mu.Lock()
	if e.server == nil {
		e.server = srv
	} else {
		e.proxies = append(e.proxies, srv)
	}
	e.mu.Unlock()
	return l.Addr().String(), nil
}

// Stop stops the endpoint and its proxies.
func (e *ECR) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range append(e.proxies, e.server) {
		_ = s.Close()
	}
}

// SetLifetime sets the lifetime of the tokens minted from now on.
func (e *ECR) SetLifetime(d time.Duration) { e.mu.Lock(); e.life = d; e.mu.Unlock() }

// SetMode sets how the endpoint answers from now on.
func (e *ECR) SetMode(m ECRMode) { e.mu.Lock(); e.mode = m; e.mu.Unlock() }

// SetDelay makes each answer wait d.
func (e *ECR) SetDelay(d time.Duration) { e.mu.Lock(); e.delay = d; e.mu.Unlock() }

// AddAccessKey registers an access key whose signatures are checked.
func (e *ECR) AddAccessKey(id, secret string) { e.mu.Lock(); e.secrets[id] = secret; e.mu.Unlock() }

// Calls returns the calls received so far.
func (e *ECR) Calls() []ECRCall {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]ECRCall(nil), e.calls...)
}

// TokenExpiry returns when the token with that password expires, and
// whether the endpoint minted it.
func (e *ECR) TokenExpiry(password string) (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.tokens[password]
	return t, ok
}

var credentialRE = regexp.MustCompile(`Credential=([^/]+)/([0-9]{8})/([^/]+)/ecr/aws4_request`)

func (e *ECR) handle(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	call := ECRCall{Time: time.Now(), Replica: r.Header.Get("X-Regcred-Replica")}
	if m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		call.AccessKeyID, call.Region = m[1], m[3]
	}
	e.mu.Lock()
	mode, delay, life, secret := e.mode, e.delay, e.life, e.secrets[call.AccessKeyID]
	e.mu.Unlock()
	if secret != "" {
		call.SignatureOK = verifySignature(r, body, call.AccessKeyID, secret, call.Region)
	}
	reply := func(status int, v any) {
		call.Status = status
		e.mu.Lock()
		e.calls = append(e.calls, call)
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if status != http.StatusOK {
			if m, ok := v.(map[string]string); ok {
				w.Header().Set("X-Amzn-ErrorType", m["__type"])
			}
		}
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	switch {
	case r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken":
		reply(http.StatusBadRequest, map[string]string{"__type": "UnknownOperationException", "message": "only GetAuthorizationToken is served here"})
	case call.AccessKeyID == "":
		reply(http.StatusForbidden, map[string]string{"__type": "MissingAuthenticationTokenException", "message": "request is not signed"})
	case secret != "" && !call.SignatureOK:
		reply(http.StatusForbidden, map[string]string{"__type": "InvalidSignatureException", "message": "signature does not match"})
	case mode == ECRThrottle:
		reply(http.StatusBadRequest, map[string]string{"__type": "ThrottlingException", "message": "Rate exceeded"})
	case mode == ECRFail:
		reply(http.StatusInternalServerError, map[string]string{"__type": "ServerException", "message": "internal error"})
	default:
		raw := make([]byte, 24)
		_, _ = rand.Read(raw)
		password := hex.EncodeToString(raw)
		exp := time.Now().Add(life)
		e.mu.Lock()
		e.tokens[password] = exp
		e.mu.Unlock()
		reply(http.StatusOK, map[string]any{"authorizationData": []map[string]any{{
			"authorizationToken": base64.StdEncoding.EncodeToString([]byte("AWS:" + password)),
			"expiresAt":          float64(exp.UnixMilli()) / 1000,
			"proxyEndpoint":      "https://" + call.AccessKeyID + ".dkr.ecr." + call.Region + ".amazonaws.com",
		}}})
	}
}

// verifySignature signs the request again, over the headers it says it
// signed, and compares.
func verifySignature(r *http.Request, body []byte, id, secret, region string) bool {
	auth := r.Header.Get("Authorization")
	i := strings.Index(auth, "SignedHeaders=")
	if i < 0 {
		return false
	}
	signed := strings.SplitN(auth[i+len("SignedHeaders="):], ",", 2)[0]
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return false
	}
	// The request is built to be signed again, never sent.
	req, err := http.NewRequest(r.Method, "https://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body)) //nolint:gosec // never sent
	if err != nil {
		return false
	}
	for _, h := range strings.Split(signed, ";") {
		if h == "host" {
			continue
		}
		req.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, req, hex.EncodeToString(sum[:]), "ecr", region, when); err != nil {
		return false
	}
	return req.Header.Get("Authorization") == auth
}

// Front serves registry reg under host (an ECR registry host) through an
// auth proxy that accepts user AWS with a token this endpoint minted and
// that has not expired, and refuses anything else with 401, as ECR does.
// The proxy listens on loopback with a certificate for host and for
// 127.0.0.1 (FrontAddr), so that a node's containerd can be pointed at it.
func (e *ECR) Front(host string, reg *Registry, user, password string) error {
	target := reg.URL()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = strings.SplitN(target, "://", 2)[0]
			pr.Out.URL.Host = reg.Host
			pr.Out.Host = reg.Host
			pr.Out.SetBasicAuth(user, password)
		},
		Transport: reg.Transport,
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		exp, minted := e.TokenExpiry(p)
		if !ok || u != "AWS" || !minted || !time.Now().Before(exp) {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+host+`"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	addr, err := e.serve(h, "127.0.0.1", []string{host, "127.0.0.1"})
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.routes[host+":443"] = addr
	e.mu.Unlock()
	return nil
}

// FrontAddr returns where the proxy of an ECR registry host that Front
// serves listens (127.0.0.1:port), or false.
func (e *ECR) FrontAddr(host string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	addr, ok := e.routes[host+":443"]
	return addr, ok
}

// Transport reaches the fronted ECR hosts (their names resolve to the
// local proxies) and trusts the test CA.
func (e *ECR) Transport() http.RoundTripper {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(e.ca.CertPEM)
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			e.mu.Lock()
			to, ok := e.routes[addr]
			e.mu.Unlock()
			if !ok {
				return nil, fmt.Errorf("%s is not fronted by the local ECR", addr)
			}
			return d.DialContext(ctx, network, to)
		},
	}
}
