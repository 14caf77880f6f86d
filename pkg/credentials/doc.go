// Package credentials turns a registry's config into the user name and
// password a pull secret holds, per registry type: static credentials as
// written (with Google service-account keys normalised), and provider tokens
// that expire (ECR) behind the same Provider interface.
package credentials
