// Package check tells whether a registry's credentials still log in, the
// way `docker login` does: GET /v2/, then answer its basic or bearer-token
// challenge with the credentials. Every connection honours the registry's
// connection mode (secure, secure-with-ca, insecure), and no result or
// error ever quotes a credential.
package check
