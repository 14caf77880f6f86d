// Package image parses container image references and registry locations,
// and matches one to the other the way the kubelet matches credentials:
// Docker Hub's aliases are one registry, ports are part of the host, a
// registry with a path prefix serves only the images under it (the longest
// prefix wins), and tags and digests never matter.
package image
