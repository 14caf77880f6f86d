// Package harness runs the benchmarks of make bench-admission and make
// bench-scale: webhook processes measured from /proc, HTTPS keep-alive
// load straight to a webhook, Pod creations through the API server, and
// the tables they print. Nothing here is part of regcred.
package harness
