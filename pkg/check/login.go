package check

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/regcred/regcred/pkg/config"
	"github.com/regcred/regcred/pkg/credentials"
	"github.com/regcred/regcred/pkg/registries"
)

// Result is the outcome of one login check.
type Result struct {
	Registry string        `json:"registry"`
	OK       bool          `json:"ok"`
	Skipped  bool          `json:"skipped,omitempty"`
	Message  string        `json:"message"`
	Time     time.Time     `json:"time"`
	Duration time.Duration `json:"durationNanoseconds"`
}

// Login checks that the registry's credentials log in now.
func Login(ctx context.Context, r *registries.Registry) (res Result) {
	start := time.Now()
	res = Result{Registry: r.Name, Time: start}
	defer func() { res.Duration = time.Since(start) }()
	// What is never checked is skipped before asking whether its Secrets
	// were read: a glob, and the admin's secret given no credentials.
	if r.Location.Glob() {
		res.Skipped, res.OK = true, true
		res.Message = fmt.Sprintf("a glob registry (%s): its hosts are known only from the images that use them", r.Location)
		return res
	}
	if r.Provider == nil && r.Mode != config.RegistryCredentials && !slices.ContainsFunc(r.Unresolved, func(f string) bool { return f != "caCert" }) {
		res.Skipped, res.OK = true, true
		res.Message = fmt.Sprintf("no credentials to check: regcred injects the admin's secret %q", r.SecretName)
		return res
	}
	if len(r.Unresolved) > 0 {
		verb := "comes"
		if len(r.Unresolved) > 1 {
			verb = "come"
		}
		res.Message = fmt.Sprintf("cannot check: %s %s from a Secret (secretKeyRef) that was not read (regcred check reads Secrets with --kubeconfig)", strings.Join(r.Unresolved, ", "), verb)
		return res
	}
	if r.Provider == nil {
		if r.Mode == config.RegistryCredentials {
			res.Message = "cannot check: this program builds no credentials for a registry"
			if r.Type != nil {
				res.Message += " of type " + string(r.Type.Name)
			}
			return res
		}
		res.Skipped, res.OK = true, true
		res.Message = fmt.Sprintf("no credentials to check: regcred injects the admin's secret %q", r.SecretName)
		return res
	}
	msg, err := login(ctx, r)
	res.OK = err == nil
	if err != nil {
		res.Message = err.Error()
	} else {
		res.Message = msg
	}
	return res
}

// maxRedirects is how many redirects a check follows in a row, fewer than
// Go's client (10): a registry or token service needs one or two.
const maxRedirects = 5

// allowsPlainHTTP reports whether the registry's connection mode lets
// regcred speak plain HTTP, and send its credentials so.
func allowsPlainHTTP(r *registries.Registry) bool {
	return r.PlainHTTP || r.Connection == config.Insecure
}

func login(ctx context.Context, r *registries.Registry) (string, error) {
	cred, err := r.Provider.Credential(ctx)
	if err != nil {
		return "", fmt.Errorf("getting credentials: %w", err)
	}
	t, err := Transport(r)
	if err != nil {
		return "", err
	}
	c := &http.Client{Transport: t, Timeout: 30 * time.Second, CheckRedirect: checkRedirect(r)}
	host := r.LoginHost()
	scheme := "https"
	if r.PlainHTTP {
		scheme = "http"
	}
	base := scheme + "://" + host + "/v2/"

	resp, err := get(ctx, c, base, nil)
	if err != nil {
		if scheme == "https" && errors.Is(err, http.ErrSchemeMismatch) && failedHost(err) == host {
			return "", plainHTTPError(r, host)
		}
		return "", describeConnError(err, r, "GET "+base)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return anonymous(ctx, c, r, base, cred)
	case http.StatusUnauthorized:
		return answer(ctx, c, r, base, resp, cred)
	}
	return "", unexpected("GET "+base, resp)
}

// plainHTTPError says that a registry written without http:// speaks
// plain HTTP. docker falls back to plain HTTP for an insecure registry,
// but the nodes do not: node trust makes containerd speak TLS to a host
// whose URL is not http:// (server https://…, skip_verify), so the
// kubelet could not pull.
func plainHTTPError(r *registries.Registry, host string) error {
	u := "http://" + strings.TrimPrefix(r.URL, "https://")
	if r.Connection == config.Insecure {
		return fmt.Errorf("%s speaks plain HTTP, not HTTPS: write the registry's url as %q (with connection: insecure, a url without http:// means TLS without verification, for regcred and for the nodes' container runtime, which could not pull)", host, u)
	}
	return fmt.Errorf("%s speaks plain HTTP, not HTTPS: write the registry's url as %q with connection: insecure (plain HTTP needs it), or serve it over HTTPS", host, u)
}

// anonymous checks the credentials of a registry whose /v2/ answers
// without any (one that allows anonymous pulls, as Artifactory or Nexus
// may): /v2/ again, with them sent up front.
func anonymous(ctx context.Context, c *http.Client, r *registries.Registry, base string, cred credentials.Credential) (string, error) {
	resp, err := get(ctx, c, base, basicAuth(cred))
	if err != nil {
		return "", describeConnError(err, r, "GET "+base+" with basic auth")
	}
	var msg string
	if s, _ := parseChallenge(resp.Header.Get("WWW-Authenticate")); resp.StatusCode == http.StatusUnauthorized && strings.EqualFold(s, "bearer") {
		msg, err = answer(ctx, c, r, base, resp, cred)
	} else {
		msg, err = basicOutcome(cred, base, resp)
	}
	if err != nil {
		return "", err
	}
	return msg + "; the registry also allows anonymous access", nil
}

// answer answers /v2/'s challenge with the credentials, as docker login
// does.
func answer(ctx context.Context, c *http.Client, r *registries.Registry, base string, resp *response, cred credentials.Credential) (string, error) {
	scheme, params := parseChallenge(resp.Header.Get("WWW-Authenticate"))
	switch strings.ToLower(scheme) {
	case "basic":
		resp, err := get(ctx, c, base, basicAuth(cred))
		if err != nil {
			return "", describeConnError(err, r, "GET "+base+" with basic auth")
		}
		return basicOutcome(cred, base, resp)
	case "bearer":
		return bearer(ctx, c, r, base, params, cred.Username, cred.Password)
	}
	return "", fmt.Errorf("GET %s: unsupported challenge %q", base, scheme)
}

func basicAuth(cred credentials.Credential) func(*http.Request) {
	return func(req *http.Request) { req.SetBasicAuth(cred.Username, cred.Password) }
}

// basicOutcome reads the answer to /v2/ with basic credentials.
func basicOutcome(cred credentials.Credential, base string, resp *response) (string, error) {
	switch resp.StatusCode {
	case http.StatusOK:
		return fmt.Sprintf("logged in as %q with basic auth", cred.Username), nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return "", fmt.Errorf("credentials of user %q rejected: GET %s with basic auth answered HTTP %d", cred.Username, base, resp.StatusCode)
	}
	return "", unexpected("GET "+base+" with basic auth", resp)
}

func bearer(ctx context.Context, c *http.Client, r *registries.Registry, base string, params map[string]string, user, password string) (string, error) {
	u, err := url.Parse(params["realm"])
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("GET %s: bearer challenge without a usable realm", base)
	}
	realm := where(u)
	if u.Scheme == "http" && !allowsPlainHTTP(r) {
		return "", fmt.Errorf("the token service %s is plain HTTP: regcred does not send the credentials of a registry with connection %s over plain HTTP", realm, r.Connection)
	}
	q := u.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	q.Set("account", user)
	u.RawQuery = q.Encode()
	resp, err := get(ctx, c, u.String(), func(req *http.Request) { req.SetBasicAuth(user, password) })
	if err != nil {
		return "", describeConnError(err, r, "the token service "+realm)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return "", fmt.Errorf("credentials of user %q rejected: the token service %s answered HTTP %d", user, realm, resp.StatusCode)
	default:
		return "", unexpected("the token service "+realm, resp)
	}
	var tok struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(resp.body, &tok); err != nil || (tok.Token == "" && tok.AccessToken == "") {
		return "", fmt.Errorf("the token service %s returned no token", realm)
	}
	token := tok.Token
	if token == "" {
		token = tok.AccessToken
	}
	resp, err = get(ctx, c, base, func(req *http.Request) { req.Header.Set("Authorization", "Bearer "+token) })
	if err != nil {
		return "", describeConnError(err, r, fmt.Sprintf("GET %s with the token of user %q", base, user))
	}
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode/100 == 3 {
			return "", unexpected(fmt.Sprintf("GET %s with the token of user %q", base, user), resp)
		}
		return "", fmt.Errorf("GET %s with the token of user %q answered HTTP %d", base, user, resp.StatusCode)
	}
	return fmt.Sprintf("logged in as %q with a bearer token from %s", user, realm), nil
}

// redirectError is a redirect a check does not follow.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }

// checkRedirect follows redirects as Go's client does (which sends the
// Authorization header on only to the same host or its subdomains), at
// most maxRedirects in a row, and never from https to plain HTTP unless
// the connection mode allows plain HTTP.
func checkRedirect(r *registries.Registry) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		code := 0
		if req.Response != nil {
			code = req.Response.StatusCode
		}
		if len(via) > maxRedirects {
			return &redirectError{fmt.Sprintf("still redirected after %d redirects (HTTP %d to %s)", maxRedirects, code, where(req.URL))}
		}
		if req.URL.Scheme != "https" && via[len(via)-1].URL.Scheme == "https" && !allowsPlainHTTP(r) {
			return &redirectError{fmt.Sprintf("redirected to plain HTTP (%s); connection %s does not allow plain HTTP", where(req.URL), r.Connection)}
		}
		return nil
	}
}

// unexpected describes an answer that is neither success nor a refusal
// of the credentials: a redirect not followed is said to be one.
func unexpected(what string, resp *response) error {
	if resp.StatusCode/100 == 3 {
		loc, err := resp.Location()
		if err != nil {
			return fmt.Errorf("%s answered HTTP %d without a Location to follow", what, resp.StatusCode)
		}
		return fmt.Errorf("%s answered HTTP %d, a redirect (to %s) regcred does not follow", what, resp.StatusCode, where(loc))
	}
	return fmt.Errorf("%s: unexpected HTTP %d", what, resp.StatusCode)
}

// where is a URL without its user information, query or fragment, for
// messages: a redirect's query may carry a signature.
func where(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

type response struct {
	*http.Response
	body []byte
}

func get(ctx context.Context, c *http.Client, u string, auth func(*http.Request)) (*response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if auth != nil {
		auth(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &response{Response: resp, body: body}, nil
}

// failedHost is the host[:port] of the request that failed, empty if the
// error does not say.
func failedHost(err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return ""
	}
	u, perr := url.Parse(ue.URL)
	if perr != nil {
		return ""
	}
	return u.Host
}

// describeConnError explains a connection failure in terms of the
// registry's connection mode, naming the host that failed: the registry,
// or its token service (or a host a redirect led to), which the same
// connection mode governs. what is the request, for a redirect not
// followed.
func describeConnError(err error, r *registries.Registry, what string) error {
	var re *redirectError
	if errors.As(err, &re) {
		return fmt.Errorf("%s: %s", what, re.msg)
	}
	// The URL of the request that failed, which the error prints, may be
	// a redirect's, with a signature in its query.
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			ue.URL = where(u)
		} else {
			ue.URL = "(a URL that does not parse)"
		}
	}
	host := failedHost(err)
	if host == "" {
		host = r.Location.Host
	}
	who := host
	switch host {
	case r.Location.Host, r.LoginHost():
		who += " (the registry)"
	default:
		who += " (the token service)"
	}
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		switch r.Connection {
		case config.SecureWithCA:
			return fmt.Errorf("TLS: the certificate of %s is signed neither by the caCert of connection secure-with-ca nor by a system root: %w", who, err)
		default:
			return fmt.Errorf("TLS: the certificate of %s is not signed by a trusted authority (connection secure verifies against the system roots; use secure-with-ca with the registry's CA, or insecure): %w", who, err)
		}
	case errors.As(err, &hostname):
		return fmt.Errorf("TLS: the certificate of %s does not name it: %w", who, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("TLS: the certificate of %s is invalid: %w", who, err)
	}
	return fmt.Errorf("connecting to %s: %w", host, err)
}

// parseChallenge reads `Scheme key="value", key2="value2"`.
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		key, after, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		var val string
		if strings.HasPrefix(after, `"`) {
			end := strings.Index(after[1:], `"`)
			if end < 0 {
				val, rest = after[1:], ""
			} else {
				val, rest = after[1:end+1], after[end+2:]
			}
		} else {
			val, rest, _ = strings.Cut(after, ",")
		}
		params[strings.ToLower(strings.TrimSpace(key))] = val
	}
	return scheme, params
}
