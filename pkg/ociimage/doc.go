// Package ociimage builds regcred's container image with Go alone, the way
// ko does: one layer holding the static binary and a CA bundle, no base
// image, run as 65532:65532. The same inputs give the same bytes, so the
// same commit gives the same digest: every time in the image is the
// commit's, the layer's entries are sorted and root-owned, and nothing
// depends on the machine or the clock.
//
// It also writes the result as an OCI image layout and pushes it to a
// registry with the credentials of the Docker config.
package ociimage
