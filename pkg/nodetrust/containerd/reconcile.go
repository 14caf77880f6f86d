package containerd

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/regcred/regcred/pkg/nodetrust"
)

// Dir is containerd's registry configuration directory (its config_path),
// where the agent's container mounts it.
type Dir struct {
	Root string
}

// Result is what a Reconcile found and did.
type Result struct {
	// Applied are the hosts whose files are as wanted now, and their mode.
	Applied map[string]nodetrust.Mode
	// Written are the hosts whose files were written now; Removed, those
	// whose files were removed.
	Written, Removed []string
	// Conflicts are the wanted hosts left alone because files there are
	// not regcred's.
	Conflicts []Conflict
	// Notes are hosts applied with a side effect the admin should know:
	// their directory hides an admin's _default/ from containerd.
	Notes []Conflict
	// Errors are the hosts whose files could not be read, written or
	// removed; Host is empty for the directory itself.
	Errors []HostError
}

// Conflict is a wanted host whose directory holds what regcred did not
// write.
type Conflict struct {
	Host, Reason string
}

// HostError is a failure to read, write or remove a host's files.
type HostError struct {
	Host string
	Err  error
}

func (e HostError) Error() string {
	if e.Host == "" {
		return e.Err.Error()
	}
	return fmt.Sprintf("host %s: %v", e.Host, e.Err)
}

// Reconcile makes the directory hold the files of want and no other file
// of regcred's: it writes each wanted host's files where they are missing
// or differ, and removes the files regcred wrote for any other host,
// except those of keep (hosts whose wanted state is unknown: their
// published entry is invalid). It never writes into, nor removes from, a
// host's directory anything regcred did not write.
func (d Dir) Reconcile(want []nodetrust.Host, keep []string) Result {
	res := Result{Applied: map[string]nodetrust.Mode{}}
	st, err := os.Stat(d.Root)
	if err == nil && !st.IsDir() {
		err = errors.New("not a directory")
	}
	if err != nil {
		res.Errors = append(res.Errors, HostError{Err: fmt.Errorf("containerd's registry config directory %s: %w", d.Root, err)})
		return res
	}
	hasDefaults := exists(filepath.Join(d.Root, DefaultsDirectory))
	wanted := map[string]bool{}
	for _, h := range want {
		if err := h.Validate(); err != nil {
			res.Errors = append(res.Errors, HostError{Host: h.Host, Err: err})
			keep = append(keep, h.Host)
			continue
		}
		wanted[h.Host] = true
		written, conflict, err := d.apply(h)
		switch {
		case err != nil:
			res.Errors = append(res.Errors, HostError{Host: h.Host, Err: err})
		case conflict != "":
			res.Conflicts = append(res.Conflicts, Conflict{Host: h.Host, Reason: conflict})
		default:
			res.Applied[h.Host] = h.Mode()
			if written {
				res.Written = append(res.Written, h.Host)
			}
			if hasDefaults {
				res.Notes = append(res.Notes, Conflict{Host: h.Host, Reason: "containerd reads this host's directory instead of " + DefaultsDirectory + "/, which is not regcred's: what it sets (a mirror, a CA) no longer applies to this host"})
			}
		}
	}
	entries, err := os.ReadDir(d.Root)
	if err != nil {
		res.Errors = append(res.Errors, HostError{Err: fmt.Errorf("reading %s: %w", d.Root, err)})
		return res
	}
	for _, e := range entries {
		host := e.Name()
		if wanted[host] || slices.Contains(keep, host) || !e.IsDir() || nodetrust.ValidHost(host) != nil {
			continue
		}
		removed, err := d.remove(host)
		if err != nil {
			res.Errors = append(res.Errors, HostError{Host: host, Err: err})
		}
		if removed {
			res.Removed = append(res.Removed, host)
		}
	}
	return res
}

// apply writes a host's files; it reports whether it wrote anything, or
// why the directory is not regcred's to write.
func (d Dir) apply(h nodetrust.Host) (written bool, conflict string, err error) {
	if alt := portDirectory(h.Host); alt != "" {
		if _, err := os.Lstat(filepath.Join(d.Root, alt)); err == nil {
			return false, fmt.Sprintf("containerd reads %s/ before %s/, and it is not regcred's", alt, h.Host), nil
		}
	}
	dir := filepath.Join(d.Root, h.Host)
	st, err := os.Lstat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(dir, dirMode); err != nil {
			return false, "", err
		}
		// A first write that fails takes the directory with it: left
		// empty, it would hide _default/ from containerd, and an empty
		// directory may be anyone's, so nothing would remove it.
		defer func() {
			if err != nil {
				// The hosts.toml failed after the CA was written: the CA
				// alone would be read as the Docker layout.
				_, _ = removeOurs(dir, CAFile)
				removeTemps(dir)
				_ = os.Remove(dir)
			}
		}()
	case err != nil:
		return false, "", err
	case !st.IsDir():
		return false, fmt.Sprintf("%s is not a directory", h.Host), nil
	default:
		if c, err := d.foreign(dir); err != nil || c != "" {
			return false, c, err
		}
	}
	hosts, ca := Render(h)
	// The CA before the hosts.toml that names it; a CA no longer named
	// after it.
	if ca != nil && !sameContent(filepath.Join(dir, CAFile), ca) {
		if err := writeFiles(dir, CAFile, ca); err != nil {
			return false, "", err
		}
		written = true
	}
	if !sameContent(filepath.Join(dir, HostsFile), hosts) {
		if err := writeFiles(dir, HostsFile, hosts); err != nil {
			return written, "", err
		}
		written = true
	}
	if ca == nil {
		removed, err := removeOurs(dir, CAFile)
		if err != nil {
			return written, "", err
		}
		written = written || removed
	}
	removeTemps(dir)
	return written, "", nil
}

// foreign says why an existing host directory is not regcred's to write:
// a hosts.toml or a CA file of someone else's; or, without a hosts.toml,
// files that containerd reads then (*.crt, *.cert, *.key: the Docker
// layout), whose meaning a hosts.toml would change. Empty if regcred may
// write there.
func (d Dir) foreign(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	hostsOurs := false
	var others []string
	for _, e := range entries {
		name := e.Name()
		p := filepath.Join(dir, name)
		switch {
		case name == HostsFile:
			if !ours(p) {
				return HostsFile + " is not regcred's", nil
			}
			hostsOurs = true
		case name == CAFile:
			if !ours(p) {
				return CAFile + " is not regcred's", nil
			}
		case strings.HasPrefix(name, tempPrefix):
		default:
			others = append(others, name)
		}
	}
	if !hostsOurs && len(others) > 0 {
		return fmt.Sprintf("it holds files that are not regcred's (%s), which containerd reads when there is no %s", strings.Join(others, ", "), HostsFile), nil
	}
	return "", nil
}

// remove removes what regcred wrote for a host: the hosts.toml first, so
// that containerd never reads one that names a missing CA, then the CA,
// then the directory if nothing else is left in it. It reports whether it
// removed a file.
func (d Dir) remove(host string) (bool, error) {
	dir := filepath.Join(d.Root, host)
	// An admin who took the hosts.toml over (deleted its marker line) may
	// still name regcred's CA in it: then both stay.
	if p := filepath.Join(dir, HostsFile); exists(p) && !ours(p) {
		return false, nil
	}
	removedHosts, err := removeOurs(dir, HostsFile)
	if err != nil {
		return false, err
	}
	removedCA, err := removeOurs(dir, CAFile)
	if err != nil {
		return removedHosts, err
	}
	if !removedHosts && !removedCA && !onlyTemps(dir) {
		return false, nil
	}
	// What a write cut short left goes too: all of it, in a directory
	// holding nothing else (a crash before the first rename).
	removeTemps(dir)
	// Only an empty directory goes: what someone else put there stays.
	_ = os.Remove(dir)
	return true, nil
}

// InForce returns the hosts whose files regcred wrote are in the
// directory, and their mode, as those files say: what containerd does for
// them now, whatever is published.
func (d Dir) InForce() map[string]nodetrust.Mode {
	entries, err := os.ReadDir(d.Root)
	if err != nil {
		return nil
	}
	out := map[string]nodetrust.Mode{}
	for _, e := range entries {
		host := e.Name()
		if !e.IsDir() || nodetrust.ValidHost(host) != nil {
			continue
		}
		p := filepath.Join(d.Root, host, HostsFile)
		if !ours(p) {
			continue
		}
		b, err := os.ReadFile(p) //nolint:gosec // a file of regcred's, under containerd's directory
		if err != nil {
			continue
		}
		if m := modeLine.FindSubmatch(b); m != nil {
			if mode, err := nodetrust.ParseMode(string(m[1])); err == nil {
				out[host] = mode
			}
		}
	}
	return out
}

// modeLine is where a hosts.toml regcred wrote gives its mode (Render).
var modeLine = regexp.MustCompile(`(?m)^# For registries: .* \(mode ([a-z-]+)\)\.$`)

// onlyTemps says whether dir holds regcred's temporary files and nothing
// else.
func onlyTemps(dir string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		return false
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), tempPrefix) || !e.Type().IsRegular() {
			return false
		}
	}
	return true
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// DefaultsDirectory is the directory containerd reads for a host that
// has none of its own.
const DefaultsDirectory = "_default"

// portDirectory is the other name containerd 2 reads, and first, for a
// host with a port: "host_port_" for "host:port". Empty for a host
// without a port.
func portDirectory(host string) string {
	i := strings.LastIndex(host, ":")
	if i <= 0 || strings.HasSuffix(host, "]") {
		return ""
	}
	return host[:i] + "_" + host[i+1:] + "_"
}
