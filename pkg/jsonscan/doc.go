// Package jsonscan reads the few values a program needs out of a JSON
// document in one pass and skips the rest, and writes JSON strings.
//
// An admission webhook reads a handful of fields of an AdmissionReview of
// several kilobytes; encoding/json validates the whole document, then
// walks it again to decode, with reflection. A Reader validates and
// decodes in the same pass, without reflection, and allocates only the
// strings it returns. What it reads follows encoding/json's rules as
// Kubernetes uses them (sigs.k8s.io/json: case-sensitive names): a null
// leaves a string as it was and sets a map or a slice to nil, a value of
// another type is a type error that leaves the rest of the document to be
// read, a duplicate name's last value wins, invalid UTF-8 becomes U+FFFD,
// nesting deeper than 10,000 is an error. The fuzz tests hold it to
// sigs.k8s.io/json on arbitrary input.
package jsonscan
