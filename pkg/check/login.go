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
	"strings"
	"time"

	"github.com/regcred/regcred/pkg/config"
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
	if len(r.Unresolved) > 0 {
		verb := "comes"
		if len(r.Unresolved) > 1 {
			verb = "come"
		}
		res.Message = fmt.Sprintf("cannot check: %s %s from a Secret (secretKeyRef) that was not read (regcred check reads Secrets with --kubeconfig)", strings.Join(r.Unresolved, ", "), verb)
		return res
	}
	if r.Location.Glob() {
		res.Skipped, res.OK = true, true
		res.Message = fmt.Sprintf("a glob registry (%s): its hosts are known only from the images that use them", r.Location)
		return res
	}
	if r.Provider == nil {
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

func login(ctx context.Context, r *registries.Registry) (string, error) {
	cred, err := r.Provider.Credential(ctx)
	if err != nil {
		return "", fmt.Errorf("getting credentials: %w", err)
	}
	t, err := Transport(r)
	if err != nil {
		return "", err
	}
	c := &http.Client{Transport: t, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	host := r.LoginHost()
	scheme := "https"
	if r.PlainHTTP {
		scheme = "http"
	}
	base := scheme + "://" + host + "/v2/"

	resp, err := get(ctx, c, base, nil)
	if err != nil && scheme == "https" && r.Connection == config.Insecure && strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		// As docker does for an insecure registry: fall back to plain HTTP.
		base = "http://" + host + "/v2/"
		resp, err = get(ctx, c, base, nil)
	}
	if err != nil {
		return "", describeConnError(err, r)
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return fmt.Sprintf("%s answers without credentials; nothing to log in to", base), nil
	case http.StatusUnauthorized:
	default:
		return "", fmt.Errorf("GET %s: unexpected HTTP %d", base, resp.StatusCode)
	}
	challenge := resp.Header.Get("WWW-Authenticate")
	scheme, params := parseChallenge(challenge)
	switch strings.ToLower(scheme) {
	case "basic":
		resp, err := get(ctx, c, base, func(req *http.Request) { req.SetBasicAuth(cred.Username, cred.Password) })
		if err != nil {
			return "", describeConnError(err, r)
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("credentials of user %q rejected: GET %s with basic auth answered HTTP %d", cred.Username, base, resp.StatusCode)
		}
		return fmt.Sprintf("logged in as %q with basic auth", cred.Username), nil
	case "bearer":
		return bearer(ctx, c, r, base, params, cred.Username, cred.Password)
	}
	return "", fmt.Errorf("GET %s: unsupported challenge %q", base, scheme)
}

func bearer(ctx context.Context, c *http.Client, r *registries.Registry, base string, params map[string]string, user, password string) (string, error) {
	realm := params["realm"]
	u, err := url.Parse(realm)
	if err != nil || realm == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("GET %s: bearer challenge without a usable realm", base)
	}
	q := u.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	q.Set("account", user)
	u.RawQuery = q.Encode()
	resp, err := get(ctx, c, u.String(), func(req *http.Request) { req.SetBasicAuth(user, password) })
	if err != nil {
		return "", describeConnError(err, r)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("credentials of user %q rejected: the token service %s answered HTTP %d", user, realm, resp.StatusCode)
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
		return "", describeConnError(err, r)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s with the token of user %q answered HTTP %d", base, user, resp.StatusCode)
	}
	return fmt.Sprintf("logged in as %q with a bearer token from %s", user, realm), nil
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

// describeConnError explains a connection failure in terms of the
// registry's connection mode.
func describeConnError(err error, r *registries.Registry) error {
	var unknown x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		switch r.Connection {
		case config.SecureWithCA:
			return fmt.Errorf("TLS: the registry's certificate is not signed by the caCert of connection secure-with-ca: %w", err)
		default:
			return fmt.Errorf("TLS: the registry's certificate is not signed by a trusted authority (connection secure verifies against the system roots; use secure-with-ca with the registry's CA, or insecure): %w", err)
		}
	case errors.As(err, &hostname):
		return fmt.Errorf("TLS: the registry's certificate does not name %s: %w", r.Location.Host, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("TLS: the registry's certificate is invalid: %w", err)
	}
	return fmt.Errorf("connecting to %s: %w", r.Location.Host, err)
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
