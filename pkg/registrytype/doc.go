// Package registrytype describes each kind of registry regcred knows, one
// file per type: the URL forms it accepts, the credential fields it takes
// and their defaults, the provider that produces its credential, and what
// its login check talks to. Types are registered explicitly, in Builtin.
package registrytype
