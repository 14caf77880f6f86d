// Package containerd writes what nodes must trust in containerd's
// registry configuration directory (config_path, /etc/containerd/certs.d
// by default in containerd 2): per registry host, <host>/hosts.toml and the
// CA it names. Every file it writes starts with a marker line, so that it
// never touches a file it did not write (an admin's own hosts.toml for a
// host is reported as a conflict and left alone) and removes what it wrote
// when its registry goes. Writes are atomic (a temporary file renamed);
// containerd reads hosts.toml at every pull, so nothing restarts.
package containerd
